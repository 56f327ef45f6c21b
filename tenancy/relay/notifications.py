"""LISTEN on a dedicated Postgres connection, reconnecting when it is lost.

A pooled connection cannot listen: the pool hands it to other work, resets it,
or closes it, and the subscription silently disappears with it. This connection
is opened for listening alone and kept until the listener is cancelled. While it
is down, callers keep their polling fallback; after each (re)connect the
callback fires once, since notifications sent meanwhile were lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from tenancy.internals import quiet_cancelled_tls_negotiation
from tenancy.log import get_logger

logger = get_logger(__name__)

_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Listener:
    """Calls ``on_notify`` for every notification on ``channel`` while running."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        connect_timeout: float = 10.0,
        retry_max: float = 30.0,
        application_name: str = "tenancy-listen",
    ) -> None:
        self._dsn = dsn
        self.channel = channel
        self._connect_timeout = connect_timeout
        self._retry_max = retry_max
        self._application_name = application_name
        #: Set while the LISTEN is in place (tests and health checks await it).
        self.connected = asyncio.Event()
        #: How many times a listening connection was established.
        self.connections = 0

    async def run(self, on_notify: Callable[[], None]) -> None:
        """Listen until cancelled, reconnecting with back-off when the connection drops."""
        delay = 1.0
        # Stopping the relay while it connects must not log an error (see the function).
        quiet_cancelled_tls_negotiation()
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout,
                    server_settings={"application_name": self._application_name},
                )
            except _CONNECT_ERRORS as exc:
                logger.warning(
                    "cannot LISTEN on %s (%s); polling, retry in %.0fs",
                    self.channel,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            try:
                await self._listen(connection, on_notify)
                delay = 1.0
                logger.warning("LISTEN connection on %s lost; reconnecting", self.channel)
            finally:
                self.connected.clear()
                # terminate() is immediate; close() would await a reply, and may be
                # running under a cancellation.
                connection.terminate()

    async def _listen(self, connection: Any, on_notify: Callable[[], None]) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(self.channel, lambda *_args: on_notify())
        self.connections += 1
        self.connected.set()
        on_notify()
        await lost.wait()
