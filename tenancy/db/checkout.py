"""The pooled connection a unit of work holds for its whole life.

It is checked out with SQLAlchemy's adapter switched to autocommit, so neither
the adapter nor asyncpg keeps transaction state of its own that could fall out
of step with the server: the unit of work sends BEGIN (with ``SET LOCAL``),
COMMIT and ROLLBACK itself (``tenancy.db.transaction``).

Cancellation and timeouts: a unit of work that ends in any way other than a
clean commit or rollback (cancelled or timed out at any await, inside BEGIN, a
statement, COMMIT or the final ROLLBACK, or with the connection lost) does not
await anything more: its connection is terminated and discarded, never handed
to the next tenant. The pool's checkout guard (``tenancy.db.engine``) is the
second line: it refuses any connection not known to be idle outside a
transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.db.connection import TenantConnection
from tenancy.db.pool_gate import PoolGate
from tenancy.errors import DatabaseUnavailable, translate
from tenancy.internals import (
    connection_over,
    idle_connection_waiting,
    room_to_check_in,
    run_pool_step,
)
from tenancy.log import get_logger
from tenancy.observability.observer import Observation

# The unit of work's logger: its records keep the name they always had.
logger = get_logger("tenancy.db.unit_of_work")


class Checkout:
    """One pooled connection: taken with a tenant transaction armed, given back or discarded.

    ``begin`` and ``set_local`` open every transaction (``set_local`` may be
    extended before ``checkout``). ``forget`` is called before the connection
    is given back or discarded: the transaction's ORM state goes with it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        begin: str,
        set_local: str,
        forget: Callable[[], None],
        gate: PoolGate | None = None,
        checkout_timeout: float | None = None,
    ) -> None:
        self._engine = engine
        self._begin = begin
        self.set_local = set_local
        self._forget = forget
        self._gate = gate
        self._gated = False
        self._checkout_timeout = checkout_timeout
        self._pooled: PoolProxiedConnection | None = None
        self._driver: TenantConnection | None = None
        self._connection: AsyncConnection | None = None
        #: A boundary (BEGIN, COMMIT, ROLLBACK) or the connection failed without a
        #: clear answer: the connection is discarded at exit, never reused.
        self.unsure = False

    async def checkout(self, observation: Observation | None) -> None:
        """Take a connection from the pool, with the first transaction armed.

        Raises:
            DatabaseUnavailable: no connection within the checkout timeout.
        """
        # pool_timeout bounds the whole checkout: the wait for a permit, the wait
        # for a pooled connection and opening a new one.
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self._checkout_timeout):
                if self._gate is not None:
                    await self._gate.acquire()
                    self._gated = True
                self._pooled = await self._take()
            if observation is not None:
                waited = asyncio.get_running_loop().time() - started
                observation.connection_acquired(waited)
        except TimeoutError as exc:
            self._release_gate()
            raise DatabaseUnavailable(
                "no database connection within the pool timeout (waiting and connecting)"
            ) from exc
        except BaseException:
            self._release_gate()
            raise

    def _release_gate(self) -> None:
        if self._gated:
            self._gated = False
            assert self._gate is not None  # set together with _gated
            self._gate.release()

    async def _take(self) -> PoolProxiedConnection:
        # An idle connection is taken without a greenlet; connecting needs one.
        return await run_pool_step(self._open, direct=idle_connection_waiting(self._engine))

    def _open(self) -> PoolProxiedConnection:
        # Runs through run_pool_step: SQLAlchemy's sync API is usable here. The
        # checkout guard has refused any connection not idle outside a transaction.
        pooled = self._engine.sync_engine.raw_connection()
        try:
            adapter = _dbapi(pooled)
            # The adapter must not start transactions of its own on this checkout:
            # this unit of work sends BEGIN and COMMIT itself (a dialect API, no I/O).
            self._engine.dialect.set_isolation_level(adapter, "AUTOCOMMIT")
            driver = pooled.driver_connection
            if not isinstance(driver, TenantConnection):
                raise RuntimeError("the unit of work's engine was not created by tenancy.db.engine")
            driver.arm(self._begin, self.set_local)
        except BaseException:
            pooled.invalidate()
            raise
        self._driver = driver
        return pooled

    async def release(self, exc: BaseException | None) -> None:
        """Give the connection back to the pool (rolled back), or discard it if not trusted.

        ``exc`` is what ends the unit of work, if anything.
        """
        try:
            await self._release_connection(exc)
        finally:
            self._pooled = self._connection = self._driver = None
            self._release_gate()

    async def _release_connection(self, exc: BaseException | None) -> None:
        pooled = self._pooled
        if pooled is None:
            return
        if not self._reusable(exc):
            self._discard()
            return
        try:
            self._forget()
            if self.is_open():
                # Leaving without commit (or after an error): roll back.
                await self.end("ROLLBACK")
            await run_pool_step(self._check_in, direct=room_to_check_in(self._engine))
        except BaseException as close_error:
            self._discard()
            # The block's outcome stands (a commit it made is acknowledged and
            # durable); a failing close only costs the connection.
            logger.warning(
                "unit of work's connection discarded while closing: %s",
                type(close_error).__name__,
            )
            if not isinstance(close_error, Exception):
                raise

    def _reusable(self, exc: BaseException | None) -> bool:
        # Cancellation (or any exit that is not an Exception) may have interrupted
        # any await: nothing more is awaited, and the connection is not trusted.
        if exc is not None and not isinstance(exc, Exception):
            return False
        if self.unsure or self._driver is None or not self._driver.settled:
            return False
        if exc is not None and isinstance(translate(exc), DatabaseUnavailable):
            # Lost, timed out on the client, or the server is going away.
            return False
        return self._pooled is not None and self._pooled.is_valid

    def _check_in(self) -> None:
        pooled = self._pooled
        assert pooled is not None  # checked by the caller
        driver = self._driver
        if driver is not None:
            driver.clear_pending()
        self._engine.dialect.reset_isolation_level(_dbapi(pooled))
        if self._connection is not None and self._connection.sync_connection is not None:
            self._connection.sync_connection.close()  # returns the pooled connection too
        else:
            pooled.close()

    def _discard(self) -> None:
        # Synchronous on purpose: awaiting here could be cancelled again (as anyio
        # cancel scopes do). Terminating closes the socket without a round trip;
        # the server rolls back whatever was open. The pool opens a new connection
        # for its next user.
        self._forget()
        driver, pooled = self._driver, self._pooled
        if driver is not None and not driver.is_closed():
            driver.terminate()
        connection = self._connection.sync_connection if self._connection is not None else None
        if connection is not None and not connection.invalidated:
            connection.invalidate()
            connection.close()
        elif pooled is not None and pooled.is_valid:
            pooled.invalidate()

    async def replace(self) -> TenantConnection:
        """Discard the connection and check out another; return its driver connection."""
        logger.info("replacing a pooled connection found closed before its first statement")
        self._discard()
        self.unsure = False
        self._pooled = await self._take()
        return self.live_driver()

    def active(self) -> PoolProxiedConnection:
        """Return the pooled connection.

        Raises:
            RuntimeError: the unit of work is not active (outside ``async with``).
        """
        if self._pooled is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        return self._pooled

    @property
    def core(self) -> AsyncConnection | None:
        """The Core connection over the pooled connection, if it was built."""
        return self._connection

    def current_core(self) -> AsyncConnection | None:
        """``core``, for an active unit of work (``RuntimeError`` if not active)."""
        self.active()
        return self._connection

    def connect_core(self) -> AsyncConnection:
        """Build the Core connection over the pooled connection (no I/O)."""
        # The Connection wraps the same pooled connection; with the adapter in
        # autocommit its begin/commit/rollback do no I/O, and its statements open
        # the armed transaction first (tenancy.db.engine's statement hook).
        connection = connection_over(self._engine, self.active())
        if connection.sync_connection is not None:
            connection.sync_connection.begin()
        self._connection = connection
        return connection

    @property
    def driver(self) -> TenantConnection | None:
        """The driver connection, if checked out (it may have been closed under us)."""
        return self._driver

    def live_driver(self) -> TenantConnection:
        """Return the driver connection.

        Raises:
            DatabaseUnavailable: the connection was lost.
        """
        driver = self._driver
        if driver is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        if driver.is_closed():
            self.unsure = True
            # asyncpg would raise an InterfaceError, which says nothing typed.
            raise DatabaseUnavailable("the database connection was lost")
        return driver

    def is_open(self) -> bool:
        """Whether a transaction was opened on the server and has not ended."""
        # Armed: the next transaction has not been opened yet. Otherwise BEGIN went
        # out, from a hot path (driver) or from a Core statement (the engine hook).
        driver = self._driver
        return driver is not None and not driver.armed

    async def end(self, how: str) -> str:
        """End the transaction with ``how`` (COMMIT or ROLLBACK); return the server's status."""
        # Unsure until the server answered.
        driver = self.live_driver()
        self.unsure = True
        status = await driver.execute(how)
        self.unsure = False
        # The next transaction is armed at once: whatever runs next opens it.
        driver.arm(self._begin, self.set_local)
        return status

    def arm(self, driver: TenantConnection) -> None:
        """Open the next tenant transaction on ``driver`` before its next statement."""
        driver.arm(self._begin, self.set_local)


def _dbapi(pooled: PoolProxiedConnection) -> Any:
    dbapi_connection = pooled.dbapi_connection
    if dbapi_connection is None:
        raise DatabaseUnavailable("the database connection was lost")
    return dbapi_connection
