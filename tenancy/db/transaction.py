"""A unit of work's tenant transactions, run one at a time on its checked-out connection.

How it runs: the unit of work drives its transactions itself, with plain SQL on
the driver connection: ``BEGIN; SET LOCAL app.org_id = ...`` as one message
before the first statement of each transaction, then ``COMMIT`` or
``ROLLBACK``. The tenant is set with ``SET LOCAL`` in every transaction, so it
ends with it and never survives on the pooled connection. The hot paths (get,
list, add) run straight on the driver connection; SQLAlchemy's Connection
(Core, the ORM session's SQL) is built over the same pooled connection only
when first needed, and its statements open the armed transaction through the
engine's statement hook. The connection itself, and what happens to it after
cancellation or a lost answer, is ``tenancy.db.checkout``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tenancy.db.checkout import Checkout
from tenancy.db.connection import TenantConnection
from tenancy.errors import TransactionAborted, translated


@dataclass(frozen=True)
class Savepoint:
    """A savepoint open on a driver connection."""

    driver: TenantConnection
    name: str


class TransactionHandle:
    """Open, commit and roll back the tenant transactions of one ``Checkout``."""

    def __init__(self, checkout: Checkout) -> None:
        self._checkout = checkout
        self._savepoints = 0

    async def driver(self) -> TenantConnection:
        """Return the driver connection inside the transaction (opened if needed).

        Raises:
            DatabaseUnavailable: the connection was lost.
        """
        self._checkout.active()
        driver = self._checkout.live_driver()
        if driver.armed:
            with translated():
                driver = await self._open_transaction(driver)
        return driver

    async def _open_transaction(self, driver: TenantConnection) -> TenantConnection:
        # BEGIN; SET LOCAL ... in one message. A connection found dead before
        # anything of this transaction reached the server is replaced, once.
        checkout = self._checkout
        replaced = False
        while True:
            checkout.unsure = True
            try:
                await driver.begin_armed()
            except Exception as exc:
                if replaced or checkout.core is not None or not _lost(exc, driver):
                    raise
                driver = await checkout.replace()
                replaced = True
                continue
            checkout.unsure = False
            return driver

    async def commit(self, *, first: str | None = None) -> None:
        """Commit the open transaction, if any; ``first`` goes before COMMIT in the same message.

        ``first`` (the outbox's ``NOTIFY``) runs in the transaction, on the node the
        connection is to, at no extra round trip. In an aborted transaction it
        fails with SQLSTATE 25P02 (``TransactionAborted`` once translated), COMMIT
        is never run, and the transaction is still open for the caller's ROLLBACK.

        Raises:
            TransactionAborted: an earlier error aborted the transaction; nothing
                of it was committed.
        """
        if self._checkout.is_open():
            status = await self._end("COMMIT" if first is None else f"{first}; COMMIT")
            if status != "COMMIT":
                # Postgres answers COMMIT with ROLLBACK for an aborted transaction.
                raise TransactionAborted(
                    "the transaction was aborted by an earlier error and rolled back; "
                    "nothing of it was committed"
                )

    async def roll_back(self) -> bool:
        """Roll back the open transaction, if any; ``False`` if the connection is gone."""
        driver = self._checkout.driver
        if driver is None or driver.is_closed():
            # Lost with the connection; the server rolled it back. Not reusable.
            self._checkout.unsure = True
            return False
        if self._checkout.is_open():
            await self._end("ROLLBACK")
        return True

    async def _end(self, how: str) -> str:
        status = await self._checkout.end(how)
        self._savepoints = 0
        return status

    def arm_next(self) -> None:
        """Follow a transaction that ended on the server, and arm the next one (no I/O)."""
        # The Core connection's own (logical) transaction follows.
        connection = self._checkout.core
        if connection is not None and connection.sync_connection is not None:
            sync_connection = connection.sync_connection
            if sync_connection.in_transaction():
                sync_connection.rollback()
            sync_connection.begin()
        driver = self._checkout.live_driver()
        if not driver.armed:
            self._checkout.arm(driver)

    async def savepoint(self) -> Savepoint:
        """Open a savepoint in the transaction (opened first if needed)."""
        driver = await self.driver()
        self._savepoints += 1
        savepoint = Savepoint(driver, f"tenancy_savepoint_{self._savepoints}")
        with translated():
            await driver.execute(f"SAVEPOINT {savepoint.name}")
        return savepoint

    async def release_savepoint(self, savepoint: Savepoint) -> None:
        """Keep what was done since ``savepoint``."""
        with translated():
            await savepoint.driver.execute(f"RELEASE SAVEPOINT {savepoint.name}")

    async def roll_back_savepoint(self, savepoint: Savepoint, exc: BaseException) -> None:
        """Undo what was done since ``savepoint``, which ``exc`` interrupted."""
        driver = savepoint.driver
        if not isinstance(exc, Exception) or driver.is_closed():
            # Cancelled: nothing more is awaited; the unit of work's exit
            # discards the connection.
            self._checkout.unsure = True
            return
        name = savepoint.name
        with translated():
            await driver.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")


def _lost(exc: BaseException, driver: TenantConnection) -> bool:
    # The connection was dead before the server saw anything of the transaction:
    # closed under us (server restart, idle timeout). A client-side timeout is
    # not that: the server may be alive and slow.
    if isinstance(exc, TimeoutError):
        return False
    return driver.is_closed() or isinstance(
        exc, asyncpg.ConnectionDoesNotExistError | ConnectionResetError | BrokenPipeError
    )
