"""asyncpg's TLS negotiation: a cancelled connect must leave no error for asyncio to log.

With ``sslmode`` ``prefer`` (asyncpg's default) or stronger, asyncpg opens the
socket with a small protocol of its own (``connect_utils.TLSUpgradeProto``) that
asks the server for TLS and puts the answer in its ``on_data`` future. If the
connect is cancelled while ``loop.create_connection`` is still finishing, asyncio
closes the new transport, the protocol's ``connection_lost`` sets
``ConnectionError('unexpected connection_lost() call')`` on a future no one will
ever await, and asyncio logs "Future exception was never retrieved" at ERROR when
the future is collected. In an ASGI service that is one ERROR line for each client
that disconnected while a pool connection was being opened; the demo printed it
after its Ctrl-C. (asyncpg 0.32 and its main branch behave so.)

``quiet_cancelled_tls_negotiation`` makes asyncpg build a subclass whose
``connection_lost`` marks that exception as retrieved. Whoever does await the
future still gets the exception; nothing else changes. asyncpg looks the class up
by its module name on every connect, so the replacement applies process-wide, to
every asyncpg connect; it is installed once and is idempotent.
"""

from __future__ import annotations

from typing import Any

from asyncpg import connect_utils

_ORIGINAL: Any = connect_utils.TLSUpgradeProto


class _QuietTLSNegotiation(_ORIGINAL):  # type: ignore[misc]  # asyncpg ships no stubs
    """asyncpg's TLS negotiation protocol, with its lost-connection error marked retrieved."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        answer = self.on_data
        if answer.done() and not answer.cancelled():
            # Reading it is what tells asyncio that someone has seen it.
            answer.exception()


def quiet_cancelled_tls_negotiation() -> None:
    """Make every later asyncpg connect leave nothing to log when it is cancelled mid-handshake."""
    connect_utils.TLSUpgradeProto = _QuietTLSNegotiation


def tls_negotiation_is_quiet() -> bool:
    """Whether asyncpg's connects use the quiet negotiation protocol."""
    return connect_utils.TLSUpgradeProto is _QuietTLSNegotiation
