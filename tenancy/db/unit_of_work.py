"""The unit of work: one pooled connection, one transaction at a time, explicit commit.

Rules it keeps (after *Architecture Patterns with Python*):

* Nothing is written by accident: leaving the block without ``commit()`` rolls
  back; an exception rolls back and leaves as a typed ``TenancyError``.
* A commit tells the truth: when Postgres answers COMMIT with ROLLBACK (the
  transaction was aborted by an earlier, caught error) it raises
  ``TransactionAborted``.
* Events raised while it runs are written to the outbox inside the same
  transaction, just before COMMIT; in-process subscribers see them only after
  the commit succeeded, never after a rollback.

How it runs: the unit of work holds one pooled connection for its whole life
and drives its transactions itself, with plain SQL on the driver connection:
``BEGIN; SET LOCAL app.org_id = ...`` as one message before the first statement
of each transaction, then ``COMMIT`` or ``ROLLBACK``. SQLAlchemy's adapter is
switched to autocommit for the checkout, so neither it nor asyncpg keeps
transaction state of its own that could fall out of step with the server. The
hot paths (get, list, add) run straight on the driver connection; SQLAlchemy's
Connection (Core, the ORM session's SQL) is built over the same pooled
connection only when first needed, and its statements open the armed
transaction through the engine's statement hook.

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
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Protocol, Self

import asyncpg
from sqlalchemy import Connection, PoolProxiedConnection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tenancy.context import TENANT_KEY, bind_tenant, unbind_tenant
from tenancy.db.connection import TenantConnection
from tenancy.db.pool_gate import PoolGate
from tenancy.db.session import JoinedSession, adopt, adopt_all, set_local_statement
from tenancy.errors import (
    DatabaseUnavailable,
    TransactionAborted,
    raise_translated,
    translate,
    translated,
)
from tenancy.events.collection import (
    EventSource,
    HeldAggregates,
    event_marks,
    pull_events,
    rewind_events,
)
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import insert_events, insert_with_event
from tenancy.events.outbox_table import TRACE_CONTEXT_SETTING
from tenancy.internals import connection_over, run_sync
from tenancy.log import get_logger
from tenancy.observability.observer import Observation, UnitOfWorkObserver, valid_traceparent
from tenancy.schema.declarative import EVENT_HOLDERS_KEY

logger = get_logger(__name__)

_ISOLATION_LEVELS = frozenset({"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})


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
        isolation_level: str | None = None,
        gate: PoolGate | None = None,
        checkout_timeout: float | None = None,
        observer: UnitOfWorkObserver | None = None,
    ) -> None:
        if isolation_level is not None and isolation_level not in _ISOLATION_LEVELS:
            raise ValueError(f"unknown isolation level {isolation_level!r}")
        self._engine = engine
        self._session_class = session_class
        self.org_id = org_id
        # Built (and the id checked) once; sent with every BEGIN of this unit of work.
        self._set_local = set_local_statement(org_id)
        self._begin = f"BEGIN ISOLATION LEVEL {isolation_level}" if isolation_level else "BEGIN"
        self._dispatcher = dispatcher
        self._gate = gate
        self._gated = False
        self._checkout_timeout = checkout_timeout
        self._loose: list[DomainEvent] = []
        # Events already in the outbox (written with their row), kept for dispatch.
        self._written: list[DomainEvent] = []
        self._pooled: PoolProxiedConnection | None = None
        self._driver: TenantConnection | None = None
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None
        # A boundary (BEGIN, COMMIT, ROLLBACK) or the connection failed without a
        # clear answer: the connection is discarded at exit, never reused.
        self._unsure = False
        self._savepoints = 0
        # Aggregates with pending events, held until commit (see adopt_all).
        self._event_holders: dict[int, Any] = {}
        self._held = HeldAggregates(self._event_holders)
        # (attribute name, repository) for every repository created so far.
        self._created_repositories: list[tuple[str, EventSource]] = []
        self._observer = observer
        self._isolation_level = isolation_level
        self._observation: Observation | None = None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        # Bound for the block, so that log records (refusals included) name the tenant.
        self._context_token = bind_tenant(self.org_id)
        if self._observer is not None:
            self._observation = self._observer.started(self.org_id, self._isolation_level)
            traceparent = valid_traceparent(self._observation.trace_context())
            if traceparent is not None:
                # Set with the tenant at every BEGIN: the outbox rows of this block
                # take it as their default (trace_context), whichever path writes them.
                self._set_local = (
                    f"{set_local_statement(self.org_id)}; "
                    f"SET LOCAL {TRACE_CONTEXT_SETTING} = '{traceparent}'"
                )
        try:
            await self._checkout()
        except BaseException as exc:
            unbind_tenant(self._context_token)
            failure = _translation(exc)
            self._observe_end(failure)
            if failure is exc:
                raise
            raise failure from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._release_connection(exc)
        finally:
            self._pooled = self._connection = self._driver = None
            self._release_gate()
            self._release_repositories()
            failure = _translation(exc) if exc is not None else None
            try:
                if failure is not None and failure is not exc:
                    raise failure from exc
            finally:
                self._observe_end(failure)
                unbind_tenant(self._context_token)

    def _observe_end(self, error: BaseException | None) -> None:
        observation, self._observation = self._observation, None
        if observation is not None:
            observation.finished(error)

    async def _checkout(self) -> None:
        # pool_timeout bounds the whole checkout: the wait for a permit, the wait
        # for a pooled connection and opening a new one.
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self._checkout_timeout):
                if self._gate is not None:
                    await self._gate.acquire()
                    self._gated = True
                self._pooled = await run_sync(self._open)
            if self._observation is not None:
                waited = asyncio.get_running_loop().time() - started
                self._observation.connection_acquired(waited)
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

    def _open(self) -> PoolProxiedConnection:
        # Runs inside run_sync: SQLAlchemy's sync API is usable here. The
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
            driver.arm(self._begin, self._set_local)
        except BaseException:
            pooled.invalidate()
            raise
        self._driver = driver
        return pooled

    async def _release_connection(self, exc: BaseException | None) -> None:
        pooled = self._pooled
        if pooled is None:
            return
        if not self._reusable(exc):
            self._discard()
            return
        try:
            self._close_session_sync()
            if self._transaction_open():
                # Leaving without commit (or after an error): roll back.
                await self._end("ROLLBACK")
            await run_sync(self._check_in)
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
        if self._unsure or self._driver is None or not self._driver.settled:
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
        self._close_session_sync()
        driver, pooled = self._driver, self._pooled
        if driver is not None and not driver.is_closed():
            driver.terminate()
        connection = self._connection.sync_connection if self._connection is not None else None
        if connection is not None and not connection.invalidated:
            connection.invalidate()
            connection.close()
        elif pooled is not None and pooled.is_valid:
            pooled.invalidate()

    def _transaction_open(self) -> bool:
        # Armed: the next transaction has not been opened yet. Otherwise BEGIN went
        # out, from a hot path (driver) or from a Core statement (the engine hook).
        driver = self._driver
        return driver is not None and not driver.armed

    async def _end(self, how: str) -> str:
        # COMMIT or ROLLBACK on the driver. Unsure until the server answered.
        driver = self._live_driver()
        self._unsure = True
        status = await driver.execute(how)
        self._unsure = False
        self._savepoints = 0
        # The next transaction is armed at once: whatever runs next opens it.
        driver.arm(self._begin, self._set_local)
        return status

    async def _open_transaction(self, driver: TenantConnection) -> TenantConnection:
        # BEGIN; SET LOCAL ... in one message. A connection found dead before
        # anything of this transaction reached the server is replaced, once.
        replaced = False
        while True:
            self._unsure = True
            try:
                await driver.begin_armed()
            except Exception as exc:
                if replaced or self._connection is not None or not _lost(exc, driver):
                    raise
                driver = await self._replace_connection()
                replaced = True
                continue
            self._unsure = False
            return driver

    async def _replace_connection(self) -> TenantConnection:
        logger.info("replacing a pooled connection found closed before its first statement")
        self._discard()
        self._unsure = False
        self._pooled = await run_sync(self._open)
        return self._live_driver()

    def _live_driver(self) -> TenantConnection:
        driver = self._driver
        if driver is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        if driver.is_closed():
            self._unsure = True
            # asyncpg would raise an InterfaceError, which says nothing typed.
            raise DatabaseUnavailable("the database connection was lost")
        return driver

    def _connect_core(self, pooled: PoolProxiedConnection) -> AsyncConnection:
        # The Connection wraps the same pooled connection; with the adapter in
        # autocommit its begin/commit/rollback do no I/O, and its statements open
        # the armed transaction first (tenancy.db.engine's statement hook).
        connection = connection_over(self._engine, pooled)
        if connection.sync_connection is not None:
            connection.sync_connection.begin()
        self._connection = connection
        return connection

    def _sync_connection(self) -> Connection:
        sync_connection = self._core().sync_connection
        if sync_connection is None:
            raise RuntimeError("the unit of work's connection is closed")
        return sync_connection

    def _close_session_sync(self) -> None:
        # The transaction ended: its aggregates and their pending events go too.
        self._event_holders.clear()
        self._detach_all()

    def _detach_all(self) -> None:
        # Aggregates with events stay held: a rolled-back savepoint rewinds only
        # the events raised inside it.
        session, self._session = self._session, None
        if session is not None:
            # Closing detaches (no expiry): callers may still read what they loaded.
            # The adapter is in autocommit, so this sends nothing.
            session.sync_session.close()

    def _next_transaction(self) -> None:
        # The transaction ended on the server: the Core connection's own (logical)
        # transaction follows, with no I/O, and the next one is armed.
        self._close_session_sync()
        if self._connection is not None and self._connection.sync_connection is not None:
            sync_connection = self._connection.sync_connection
            if sync_connection.in_transaction():
                sync_connection.rollback()
            sync_connection.begin()
        driver = self._live_driver()
        if not driver.armed:
            driver.arm(self._begin, self._set_local)

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
        self._active()
        return self._live_driver()

    # -- access for repositories -----------------------------------------------

    @property
    def session(self) -> AsyncSession:
        """The ORM session, joined to this unit of work's connection and transaction."""
        session = self._identity_session()
        if session.sync_session.bind is None:
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

        It is persistent at once, as after the ORM's own flush (the session is
        created, unbound, if it did not exist yet).
        """
        return adopt(self._identity_session().sync_session, obj)

    @property
    def dialect(self) -> Dialect:
        """The engine's dialect: repositories compile their SQL with it."""
        return self._engine.dialect

    def connection(self) -> AsyncConnection:
        """The Core connection this unit of work's transaction runs on."""
        return self._core()

    async def core_connection(self) -> AsyncConnection:
        """``connection()``, awaitable like a session's (one interface for repositories)."""
        return self._core()

    @property
    def event_collector(self) -> Self:
        """This unit of work: it collects its aggregates' events and writes them at commit."""
        return self

    async def driver(self) -> TenantConnection:
        """The driver connection, inside this unit of work's transaction (opened if needed).

        Raises:
            DatabaseUnavailable: the connection was lost.
        """
        driver = self._driver_connection()
        if driver.armed:
            with translated():
                driver = await self._open_transaction(driver)
        return driver

    async def insert_with_event(
        self, insert_sql: str, values: Sequence[Any], event: DomainEvent
    ) -> Any:
        """Insert a row and write its created ``event`` to the outbox, in one statement.

        Returns the row the INSERT's RETURNING yields, if it has one.
        """
        row = await insert_with_event(await self.driver(), insert_sql, values, self.org_id, event)
        self._written.append(event)
        return row

    # -- events ----------------------------------------------------------------

    def _event_sources(self) -> Iterable[EventSource]:
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
            TransactionAborted: an earlier error aborted the transaction; nothing of
                it was committed.
            Conflict, ForeignKeyViolation, IsolationViolation, RetryableError, ...:
                the transaction could not commit; it is rolled back.
        """
        self._active()  # raises when not inside `async with`
        try:
            await self._flush_changes()
            pending = pull_events(self._loose, self._event_sources())
            if pending:
                await insert_events(await self.driver(), self.org_id, pending)
            if self._transaction_open():
                status = await self._end("COMMIT")
                if status != "COMMIT":
                    # Postgres answers COMMIT with ROLLBACK for an aborted transaction.
                    raise TransactionAborted(
                        "the transaction was aborted by an earlier error and rolled back; "
                        "nothing of it was committed"
                    )
            self._next_transaction()
        except Exception as exc:
            await self._abandon()
            failure = _translation(exc)
            if self._observation is not None:
                self._observation.failed(failure)
            if failure is exc:
                raise
            raise failure from exc
        if self._observation is not None:
            self._observation.committed(len(self._written) + len(pending))
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
        self._close_session_sync()
        driver = self._driver
        if driver is None or driver.is_closed():
            # Lost with the connection; the server rolled it back. Not reusable.
            self._unsure = True
            return
        if self._transaction_open():
            await self._end("ROLLBACK")
        self._next_transaction()

    async def _flush_changes(self) -> None:
        session = self._session
        if session is not None and (session.new or session.dirty or session.deleted):
            await self.session.flush()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block in a nested transaction; an error rolls back only the block.

        This is the way to recover from an expected database error, for example
        "insert, on conflict look it up"::

            try:
                async with uow.savepoint():
                    customer = await uow.customers.add(Customer(email=email, name=name))
            except Conflict:
                customer = await uow.customers.get_by_email(email)

        Without the savepoint the failed insert aborts the whole transaction, and
        ``commit()`` raises ``TransactionAborted``.

        Events raised inside a rolled-back savepoint are discarded with it, and the
        aggregates loaded so far are detached (their state may be the block's):
        get them again to go on changing them.
        """
        await self._flush_changes()
        marks = event_marks(self._loose, self._event_sources())
        written = len(self._written)
        driver = await self.driver()
        self._savepoints += 1
        name = f"tenancy_savepoint_{self._savepoints}"
        with translated():
            await driver.execute(f"SAVEPOINT {name}")
        try:
            yield
            await self._flush_changes()
        except BaseException as exc:
            rewind_events(marks, self._loose, self._event_sources())
            del self._written[written:]
            self._detach_all()
            if not isinstance(exc, Exception) or driver.is_closed():
                # Cancelled: nothing more is awaited; the unit of work's exit
                # discards the connection.
                self._unsure = True
                raise
            with translated():
                await driver.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            raise
        else:
            with translated():
                await driver.execute(f"RELEASE SAVEPOINT {name}")


def _translation(exc: BaseException) -> BaseException:
    """Return what ``exc`` leaves a unit of work as: its ``TenancyError``, or itself.

    The translation is logged as a refusal once (``raise_translated``); cancellation
    and other ``BaseException``s are never translated.
    """
    if not isinstance(exc, Exception):
        return exc
    try:
        raise_translated(exc)
    except Exception as translated:
        return translated
    return exc


def _dbapi(pooled: PoolProxiedConnection) -> Any:
    dbapi_connection = pooled.dbapi_connection
    if dbapi_connection is None:
        raise DatabaseUnavailable("the database connection was lost")
    return dbapi_connection


def _lost(exc: BaseException, driver: TenantConnection) -> bool:
    # The connection was dead before the server saw anything of the transaction:
    # closed under us (server restart, idle timeout). A client-side timeout is
    # not that: the server may be alive and slow.
    if isinstance(exc, TimeoutError):
        return False
    return driver.is_closed() or isinstance(
        exc, asyncpg.ConnectionDoesNotExistError | ConnectionResetError | BrokenPipeError
    )


def _bind(session: AsyncSession, connection: AsyncConnection) -> None:
    # What AsyncSession(bind=connection) would have set up.
    session.bind = connection
    session.sync_session.bind = connection.sync_connection
