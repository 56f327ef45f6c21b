"""The driver connection: tenant transactions started in one message, and a settled flag.

Two ways start a transaction on it:

* The unit of work arms ``BEGIN; SET LOCAL app.org_id = ...`` (``arm``) and
  sends it itself before its first statement (``begin_armed``), one
  simple-query message, so a transaction can never run without its tenant,
  whatever state the driver's own bookkeeping is in.
* A plain ORM session lets SQLAlchemy's adapter send ``BEGIN`` lazily. Its
  ``after_begin`` hook leaves the tenant statement here (``begin_with``), and
  ``execute`` appends it to that ``BEGIN``. If the adapter tries to start the
  transaction with anything other than ``BEGIN`` while no transaction is open
  (asyncpg sends ``SAVEPOINT`` when an earlier start was interrupted), the
  connection is terminated instead: a tenant transaction without its tenant is
  never sent.

Any other ``BEGIN`` (a tenant-less resolver, a plain ``engine.connect()``)
carries ``SET LOCAL app.org_id = ''``: no transaction on this connection ever
sees a session-level tenant value left behind by a stray ``SET``.

Every transaction boundary (BEGIN, COMMIT, ROLLBACK) marks the connection
unsettled until the server's answer arrives. A boundary interrupted by
cancellation, a timeout or an error leaves it unsettled, and the pool's
checkout guard (``tenancy.db.engine``) discards such a connection rather than
hand it to the next tenant.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_BOUNDARIES = ("BEGIN", "COMMIT", "ROLLBACK", "END", "ABORT")

#: Sent after every BEGIN that carries no tenant (fail closed: no row is visible).
NO_TENANT = "SET LOCAL app.org_id = ''"


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no stubs
    """An asyncpg connection that knows whether its transaction state is settled."""

    _tenancy_pending: str | None = None
    _tenancy_prelude: str | None = None
    _tenancy_settled: bool = True
    _tenancy_armed: str | None = None

    @property
    def settled(self) -> bool:
        """Whether every transaction boundary sent on this connection got its answer."""
        return self._tenancy_settled and not self.is_closed()

    def begin_always_with(self, statement: str) -> None:
        """Send ``statement`` after every ``BEGIN`` of this connection (e.g. SET LOCAL timeouts)."""
        self._tenancy_prelude = statement

    def begin_with(self, statement: str) -> None:
        """Send ``statement`` right after the next ``BEGIN`` of this connection."""
        self._tenancy_pending = statement

    def clear_pending(self) -> None:
        """Forget statements that were never sent (the transaction ran no statement)."""
        self._tenancy_pending = None
        self._tenancy_armed = None

    @property
    def armed(self) -> bool:
        """Whether a tenant transaction is to be opened before the next statement."""
        return self._tenancy_armed is not None

    def arm(self, begin: str, set_local: str) -> None:
        """Open a tenant transaction (``begin``, then ``set_local``) before the next statement.

        Nothing is sent now: the unit of work opens it on first use (``begin_armed``),
        and so does SQLAlchemy's Core path through the engine's statement hook.
        """
        parts = [begin, self._tenancy_prelude, set_local]
        self._tenancy_armed = "; ".join(p for p in parts if p is not None)

    async def begin_armed(self) -> None:
        """Open the armed tenant transaction: BEGIN and SET LOCAL in one message.

        Raises:
            asyncpg.InterfaceError: a transaction is already open on this connection.
        """
        statement = self._tenancy_armed
        if statement is None:
            return
        if self.is_in_transaction():
            raise asyncpg.InterfaceError("a transaction is already open on this connection")
        self._tenancy_pending = None
        await self._send(statement, None)
        self._tenancy_armed = None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 (asyncpg signature)
        """Execute ``query``; a pending tenant statement rides along with a plain ``BEGIN``."""
        if args:
            status: str = await super().execute(query, *args, timeout=timeout)
            return status
        pending = self._tenancy_pending
        if pending is not None:
            query = self._with_pending(query, pending)
        elif query.startswith("BEGIN"):
            # A transaction without a tenant: the setting is made explicitly empty,
            # so a session-level value left on this connection (a stray SET or
            # set_config(..., false), or one from another client behind a
            # transaction-mode pooler) is never seen inside it.
            extra = "; ".join(s for s in (self._tenancy_prelude, NO_TENANT) if s is not None)
            query = f"{query.rstrip(';')}; {extra}"
        return await self._send(query, timeout)

    async def _send(self, query: str, timeout: float | None) -> str:  # noqa: ASYNC109
        if not _has_boundary(query):
            status: str = await super().execute(query, timeout=timeout)
            return status
        # Unsettled until the server answers: an interrupted boundary leaves the
        # connection's transaction state unknown, and the pool discards it.
        self._tenancy_settled = False
        status = await super().execute(query, timeout=timeout)
        self._tenancy_settled = True
        return status

    def _with_pending(self, query: str, pending: str) -> str:
        if query.startswith("BEGIN"):
            self._tenancy_pending = None
            extra = "; ".join(s for s in (self._tenancy_prelude, pending) if s is not None)
            return f"{query.rstrip(';')}; {extra}"
        if not self.is_in_transaction():
            # The driver is starting the tenant's transaction with something other
            # than BEGIN (a SAVEPOINT after an interrupted start): its bookkeeping
            # is out of step with the server, so this connection is never used again.
            self._tenancy_pending = None
            self.terminate()
            raise asyncpg.InterfaceError(
                "transaction start without BEGIN on a connection out of step; it was discarded"
            )
        return query


def _has_boundary(query: str) -> bool:
    # Any statement of a simple-query message counts ("NOTIFY ...; COMMIT" too). A
    # semicolon inside a literal only makes a message look like a boundary, which
    # costs nothing: it is unsettled until its answer arrives.
    return any(part.lstrip().upper().startswith(_BOUNDARIES) for part in query.split(";"))
