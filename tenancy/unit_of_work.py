"""The unit of work: one pooled connection, one transaction, explicit commit.

Rules it keeps (after *Architecture Patterns with Python*):

* Nothing is written by accident: leaving the block without ``commit()`` rolls
  back; an exception rolls back and leaves as a typed ``TenancyError``.
* Events raised while it runs are written to the outbox inside the same
  transaction, just before COMMIT; in-process subscribers see them only after
  the commit succeeded, never after a rollback.

How it runs: the unit of work holds one pooled connection for its whole life.
Each transaction on it starts with ``BEGIN; SET LOCAL app.org_id = ...`` sent as
one message, on first use. The hot paths (get, list, add) run straight on the
driver connection, and COMMIT/ROLLBACK go there too; SQLAlchemy's Connection
(Core, the ORM session's SQL, savepoints) is built over the same pooled
connection only when first needed, and then carries on the same transaction.
Rows read or inserted join an ORM session's identity map as SQLAlchemy's loader
puts them there: unchanged ones held weakly, changed ones until flushed, ones
with pending events until commit; a unit of work that only inserts keeps its
new aggregates in a list and builds no session at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from sqlalchemy import Connection, PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.util import greenlet_spawn

from models.base import EVENT_HOLDERS_KEY
from tenancy.connection import TenantConnection
from tenancy.context import bind_tenant, unbind_tenant
from tenancy.errors import DatabaseUnavailable, raise_translated
from tenancy.event_collection import (
    EventSource,
    HeldAggregates,
    event_marks,
    pull_events,
    rewind_events,
)
from tenancy.events import DomainEvent
from tenancy.log import get_logger
from tenancy.outbox import insert_events, insert_with_event
from tenancy.session import TENANT_KEY, JoinedSession, adopt, adopt_all, set_local_statement

logger = get_logger(__name__)


class EventDispatcher(Protocol):
    """Receives a committed transaction's events (in-process subscribers)."""

    async def dispatch(self, events: Sequence[DomainEvent]) -> None:
        """Deliver ``events``; must not raise for a failing handler."""


class UnitOfWork:
    """A tenant transaction shared by several repositories.

    Subclasses declare their repositories as ``RepositoryAttribute``s; each is
    created on first use with ``self`` as the source of its session and driver
    connection, and its events are collected at commit.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        org_id: uuid.UUID,
        *,
        dispatcher: EventDispatcher | None = None,
        session_class: type[JoinedSession] = JoinedSession,
    ) -> None:
        self._engine = engine
        self._session_class = session_class
        self.org_id = org_id
        # Built (and the id checked) once; sent with every BEGIN of this unit of work.
        self._set_local = set_local_statement(org_id)
        self._dispatcher = dispatcher
        self._loose: list[DomainEvent] = []
        # Events already in the outbox (written with their row), kept for dispatch.
        self._written: list[DomainEvent] = []
        self._pooled: PoolProxiedConnection | None = None
        self._connection: AsyncConnection | None = None
        self._adapter: Any = None
        self._session: AsyncSession | None = None
        # Aggregates with pending events, held until commit (see adopt_all).
        self._event_holders: dict[int, Any] = {}
        self._held = HeldAggregates(self._event_holders)
        # Instances inserted before the session exists (see adopt_inserted).
        self._inserted: list[Any] = []
        # (attribute name, repository) for every repository created so far.
        self._created_repositories: list[tuple[str, EventSource]] = []

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        # Bound for the block, so that log records (refusals included) name the tenant.
        self._context_token = bind_tenant(self.org_id)
        try:
            # Checkout (and, if needed, the Core connection) in one hop into
            # SQLAlchemy's sync core: each hop costs a greenlet switch.
            self._pooled = await greenlet_spawn(self._open)
        except Exception as exc:
            unbind_tenant(self._context_token)
            raise_translated(exc)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._pooled is not None:
                # Closing rolls back whatever was not committed, error or not.
                await self._close()
        except Exception as close_error:
            if exc is None:
                raise
            # The block's own error is the one to report; this one follows from it.
            logger.warning("unit of work closed after an error: %s", type(close_error).__name__)
        finally:
            self._pooled = self._connection = self._adapter = None
            self._release_repositories()
            try:
                if exc is not None and isinstance(exc, Exception):
                    raise_translated(exc)
            finally:
                unbind_tenant(self._context_token)

    def _open(self) -> PoolProxiedConnection:
        # Runs inside greenlet_spawn: SQLAlchemy's sync API is usable here. The hot
        # paths need only the pooled driver connection; SQLAlchemy's Connection
        # (Core, the ORM session, savepoints) is built over it on first need, or
        # now when the engine carries execution options (an isolation level),
        # which only a Connection applies.
        pooled = self._engine.sync_engine.raw_connection()
        try:
            self._adapter = pooled.dbapi_connection
            self._prepare_begin()
            if self._engine.sync_engine.get_execution_options():
                self._connect_core(pooled)
        except BaseException:
            self._connection = None
            pooled.close()
            raise
        return pooled

    def _prepare_begin(self) -> None:
        # No round trip: the adapter sends BEGIN lazily, and SET LOCAL rides with it.
        self._driver_connection().begin_with(self._set_local)

    def _begin_core(self, sync_connection: Connection) -> None:
        # The next transaction, on the Core path: SQLAlchemy's begin() does no I/O.
        self._prepare_begin()
        sync_connection.begin()

    def _connect_core(self, pooled: PoolProxiedConnection) -> AsyncConnection:
        # The Connection joins whatever the adapter has (its BEGIN may already have
        # been sent by a hot path): SQLAlchemy's begin() does no I/O for asyncpg.
        sync_connection = Connection(self._engine.sync_engine, connection=pooled)
        sync_connection.begin()
        self._connection = AsyncConnection(self._engine, sync_connection)
        return self._connection

    def _sync_connection(self) -> Connection:
        sync_connection = self._core().sync_connection
        if sync_connection is None:
            raise RuntimeError("the unit of work's connection is closed")
        return sync_connection

    async def _close(self) -> None:
        if self._connection is not None:
            await greenlet_spawn(self._close_core)
            return
        pooled = self._pooled
        assert pooled is not None  # checked by the caller
        self._close_session_sync()
        try:
            if self._driver_connection().is_closed():
                # Lost mid-transaction (that error was raised where it happened):
                # there is nothing to roll back, and the connection is discarded.
                self._adapter._transaction = None
                await greenlet_spawn(pooled.invalidate)
            else:
                await self._end_transaction("rollback")
        except BaseException as exc:
            # A connection whose ROLLBACK failed is not given to anyone else.
            await greenlet_spawn(pooled.invalidate)
            raise_translated(exc)
            raise
        finally:
            # Check-in may do I/O (closing an overflow connection): in a greenlet.
            await greenlet_spawn(pooled.close)

    def _close_core(self) -> None:
        self._close_session_sync()
        self._sync_connection().close()

    async def _end_transaction(self, how: Literal["commit", "rollback"]) -> None:
        # COMMIT or ROLLBACK straight on the driver, as the adapter would do it.
        adapter = self._adapter
        transaction = adapter._transaction if adapter is not None else None
        if transaction is not None:
            end = transaction.commit if how == "commit" else transaction.rollback
            await adapter._call_and_discard(end)

    def _close_session_sync(self) -> None:
        # The transaction ended: its aggregates and their pending events go too.
        self._event_holders.clear()
        self._detach_all()

    def _detach_all(self) -> None:
        # Aggregates with events stay held: a rolled-back savepoint rewinds only
        # the events raised inside it.
        self._inserted.clear()
        session, self._session = self._session, None
        if session is not None:
            # Closing detaches (no expiry): callers may still read what they loaded.
            session.sync_session.close()

    def _commit_and_begin(self) -> None:
        sync_connection = self._sync_connection()
        sync_connection.commit()
        self._close_session_sync()
        self._begin_core(sync_connection)

    def _rollback_and_begin(self) -> None:
        self._close_session_sync()
        sync_connection = self._sync_connection()
        sync_connection.rollback()
        self._begin_core(sync_connection)

    def _active(self) -> PoolProxiedConnection:
        if self._pooled is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        return self._pooled

    def _core(self) -> AsyncConnection:
        pooled = self._active()
        if self._connection is not None:
            return self._connection
        connection = self._connect_core(pooled)
        if self._session is not None:
            _bind(self._session, connection)
        return connection

    def _driver_connection(self) -> TenantConnection:
        driver = self._adapter.driver_connection if self._adapter is not None else None
        if not isinstance(driver, TenantConnection):
            raise RuntimeError("the unit of work is not active, or its engine is not tenancy's")
        return driver

    # -- access for repositories -----------------------------------------------

    @property
    def session(self) -> AsyncSession:
        """The ORM session, joined to this unit of work's connection and transaction."""
        session = self._identity_session()
        if session.bind is None:
            _bind(session, self._core())
        return session

    def _identity_session(self) -> AsyncSession:
        # Created unbound: the hot paths use only its identity map. It is bound to
        # the Core connection when it must run SQL (``session``).
        if self._session is None:
            self._active()
            session = self._session = AsyncSession(
                bind=self._connection,
                sync_session_class=self._session_class,
                # The unit of work, not the session, ends the transaction.
                join_transaction_mode="rollback_only",
                expire_on_commit=False,
                autoflush=False,
                info={TENANT_KEY: self.org_id, EVENT_HOLDERS_KEY: self._event_holders},
            )
            inserted, self._inserted = self._inserted, []
            for obj in inserted:
                adopt(session.sync_session, obj)
            return session
        return self._session

    def adopt_all(self, objs: list[Any]) -> list[Any]:
        """Make detached instances (a read's rows) part of this unit of work, without SQL.

        Returns the instance already held for a row instead, if any, so one row
        is one object within a transaction. Unchanged instances are held weakly,
        as SQLAlchemy's identity map does; changed ones until they are flushed.
        """
        return adopt_all(self._identity_session().sync_session, objs)

    def adopt_inserted(self, obj: Any) -> Any:
        """Make an instance this unit of work just inserted part of it, without SQL.

        Until the session exists the instance waits in a list, held strongly (the
        caller just created it), and commit flushes it if it changed meanwhile: a
        unit of work that only inserts never builds a session.
        """
        if self._session is not None:
            return adopt(self._session.sync_session, obj)
        self._inserted.append(obj)
        return obj

    def connection(self) -> AsyncConnection:
        """The Core connection this unit of work's transaction runs on."""
        return self._core()

    async def driver(self) -> TenantConnection:
        """The driver connection, inside this unit of work's transaction."""
        adapter = self._adapter
        if adapter is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        if adapter.driver_connection.is_closed():
            # asyncpg would raise an InterfaceError, which says nothing typed.
            raise DatabaseUnavailable("the database connection was lost")
        if adapter._transaction is None:
            # The transaction has not reached the server yet: send BEGIN (with
            # its SET LOCAL) now, through the adapter so that it tracks it.
            try:
                await adapter._start_transaction()
            except Exception as exc:
                raise_translated(exc)
                raise
        return self._driver_connection()

    async def insert_with_event(
        self, insert_sql: str, values: Sequence[Any], event: DomainEvent
    ) -> None:
        """Insert a row and write its created ``event`` to the outbox, in one statement."""
        await insert_with_event(await self.driver(), insert_sql, values, self.org_id, event)
        self._written.append(event)

    # -- events ----------------------------------------------------------------

    def _event_sources(self) -> Iterable[EventSource]:
        # An inserted aggregate waiting for the session has no session for
        # record_event to find its holders through: hold it here once it has events.
        holders = self._event_holders
        for obj in self._inserted:
            if "_pending_events" in obj.__dict__:
                holders[id(obj)] = obj
        return [self._held, *(repository for _, repository in self._created_repositories)]

    def _release_repositories(self) -> None:
        # Repositories refer back to the unit of work: dropping them here breaks the
        # cycle, so reference counting frees both (and the aggregates) at once.
        created, self._created_repositories = self._created_repositories, []
        for name, repository in created:
            repository._release()
            self.__dict__.pop(name, None)

    def collect(self, event: DomainEvent) -> None:
        """Queue an event not attached to any aggregate, written at commit."""
        self._loose.append(event)

    # -- ending transactions -----------------------------------------------------

    async def commit(self) -> None:
        """Write pending changes and events, commit, then notify subscribers.

        The unit of work stays usable: the next statement starts a new transaction.

        Raises:
            Conflict, ForeignKeyViolation, IsolationViolation, RetryableError, ...:
                the transaction could not commit; it is rolled back.
        """
        self._active()  # raises when not inside `async with`
        try:
            await self._flush_changes()
            pending = pull_events(self._loose, self._event_sources())
            if pending:
                await insert_events(await self.driver(), self.org_id, pending)
            if self._connection is not None:
                # COMMIT, then the next transaction is prepared (no round trip), in one hop.
                await greenlet_spawn(self._commit_and_begin)
            else:
                await self._end_transaction("commit")
                self._close_session_sync()
                self._prepare_begin()
        except Exception as exc:
            await self._abandon()
            raise_translated(exc)
            raise
        events = sorted([*self._written, *pending], key=lambda e: e.occurred_at)
        self._written.clear()
        if events and self._dispatcher is not None:
            await self._dispatcher.dispatch(events)

    async def rollback(self) -> None:
        """Discard everything since the last commit, events included."""
        pull_events(self._loose, self._event_sources())
        await self._abandon()

    async def _abandon(self) -> None:
        self._written.clear()
        if self._connection is not None:
            await greenlet_spawn(self._rollback_and_begin)
            return
        self._close_session_sync()
        try:
            await self._end_transaction("rollback")
        finally:
            self._prepare_begin()

    async def _flush_changes(self) -> None:
        if self._session is None and any(obj._sa_instance_state.modified for obj in self._inserted):
            self._identity_session()  # adopts them; their changes are flushed below
        session = self._session
        if session is not None and (session.new or session.dirty or session.deleted):
            await self.session.flush()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block in a nested transaction; an error rolls back only the block.

        Events raised inside a rolled-back savepoint are discarded with it, and the
        aggregates loaded so far are detached (their state may be the block's):
        get them again to go on changing them.
        """
        await self._flush_changes()
        marks = event_marks(self._loose, self._event_sources())
        written = len(self._written)
        await self.driver()  # the savepoint needs the transaction on the server
        # The savepoint belongs to the connection, which the hot paths and the
        # session share, so it covers writes made either way.
        nested = await self._core().begin_nested()
        try:
            yield
            await self._flush_changes()
        except BaseException:
            rewind_events(marks, self._loose, self._event_sources())
            del self._written[written:]
            await nested.rollback()
            await greenlet_spawn(self._detach_all)
            raise
        else:
            await nested.commit()


def _bind(session: AsyncSession, connection: AsyncConnection) -> None:
    # What AsyncSession(bind=connection) would have set up.
    session.bind = connection
    session.sync_session.bind = connection.sync_connection
