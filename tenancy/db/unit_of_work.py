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

It is made of parts, one module each: the pooled connection it holds for its
whole life, terminated and discarded rather than reused after cancellation, a
timeout or a lost answer (``tenancy.db.checkout``); the tenant transactions run
on it, each opened with ``BEGIN; SET LOCAL`` (``tenancy.db.transaction``); the
identity map its aggregates are adopted into without SQL
(``tenancy.db.identity``); and the events it holds until commit
(``tenancy.events.collector``). This module ties them to one another, to the
repositories and to the observer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tenancy.context import bind_tenant, unbind_tenant
from tenancy.db.checkout import Checkout
from tenancy.db.connection import TenantConnection
from tenancy.db.identity import IdentityMap, adopt, adopt_all, bind_session
from tenancy.db.pool_gate import PoolGate
from tenancy.db.session import JoinedSession, set_local_statement
from tenancy.db.transaction import TransactionHandle
from tenancy.errors import raise_translated
from tenancy.events.collector import EventCollector
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import WAKE_RELAY, insert_events, insert_with_event
from tenancy.events.outbox_table import TRACE_CONTEXT_SETTING
from tenancy.observability.observer import Observation, UnitOfWorkObserver, valid_traceparent

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
        self.org_id = org_id
        self._dispatcher = dispatcher
        self._identity = IdentityMap(org_id, session_class)
        self._checkout = Checkout(
            engine,
            begin=f"BEGIN ISOLATION LEVEL {isolation_level}" if isolation_level else "BEGIN",
            # Built (and the id checked) once; sent with every BEGIN of this unit of work.
            set_local=set_local_statement(org_id),
            # The connection's transaction ends: its aggregates and their pending events go too.
            forget=self._identity.close,
            gate=gate,
            checkout_timeout=checkout_timeout,
        )
        self._transaction = TransactionHandle(self._checkout)
        self._collector = EventCollector(self._identity.held)
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
                self._checkout.set_local = (
                    f"{set_local_statement(self.org_id)}; "
                    f"SET LOCAL {TRACE_CONTEXT_SETTING} = '{traceparent}'"
                )
        try:
            await self._checkout.checkout(self._observation)
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
            await self._checkout.release(exc)
        finally:
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

    def _release_repositories(self) -> None:
        # Repositories refer back to the unit of work: dropping them here breaks the
        # cycle, so reference counting frees both (and the aggregates) at once.
        for name in self._collector.release_repositories():
            self.__dict__.pop(name, None)

    # -- access for repositories -----------------------------------------------

    def _identity_session(self) -> AsyncSession:
        # Created unbound: the hot paths use only its identity map. It is bound to
        # the Core connection when it must run SQL (``session``).
        session = self._identity.current
        if session is None:
            session = self._identity.open(self._checkout.current_core())
        return session

    def _core(self) -> AsyncConnection:
        checkout = self._checkout
        checkout.active()
        connection = checkout.core
        if connection is None:
            connection = checkout.connect_core()
            self._identity.bind(connection)
        return connection

    @property
    def session(self) -> AsyncSession:
        """The ORM session, joined to this unit of work's connection and transaction."""
        session = self._identity_session()
        if session.sync_session.bind is None:
            bind_session(session, self._core())
        return session

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
        return await self._transaction.driver()

    async def insert_with_event(
        self, insert_sql: str, values: Sequence[Any], event: DomainEvent
    ) -> Any:
        """Insert a row and write its created ``event`` to the outbox, in one statement.

        Returns the row the INSERT's RETURNING yields, if it has one.
        """
        row = await insert_with_event(await self.driver(), insert_sql, values, self.org_id, event)
        self._collector.written(event)
        return row

    def events_written(self, events: Sequence[DomainEvent]) -> None:
        """Remember ``events`` a statement of this transaction wrote to the outbox itself.

        For a function that writes its own events (the identity changes): they are
        dispatched after commit like the others, and never written twice.
        """
        for event in events:
            self._collector.written(event)

    def collect(self, event: DomainEvent) -> None:
        """Queue an event not attached to any aggregate, written at commit."""
        self._collector.collect(event)

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
        self._checkout.active()  # raises when not inside `async with`
        try:
            await self._flush_changes()
            pending = self._collector.pull()
            if pending:
                await insert_events(await self.driver(), self.org_id, pending)
            # The relay is woken with the COMMIT, in its message: on the node this
            # connection is to (the coordinator on Citus, where the relay listens),
            # and only if the transaction commits.
            wake = bool(pending) or self._collector.written_count > 0
            await self._transaction.commit(first=WAKE_RELAY if wake else None)
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
            self._observation.committed(self._collector.written_count + len(pending))
        events = self._collector.committed(pending)
        if events and self._dispatcher is not None:
            await self._dispatcher.dispatch(events)

    async def rollback(self) -> None:
        """Discard everything since the last commit, events included."""
        self._collector.pull()
        await self._abandon()

    async def _abandon(self) -> None:
        self._collector.forget_written()
        self._identity.close()
        if await self._transaction.roll_back():
            self._next_transaction()

    def _next_transaction(self) -> None:
        # The transaction ended on the server: its aggregates go, and the next
        # transaction is armed (no I/O).
        self._identity.close()
        self._transaction.arm_next()

    async def _flush_changes(self) -> None:
        if self._identity.has_changes():
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
        marks = self._collector.mark()
        savepoint = await self._transaction.savepoint()
        try:
            yield
            await self._flush_changes()
        except BaseException as exc:
            self._collector.rewind(marks)
            self._identity.detach_all()
            # Cancelled (or the connection gone): this sends nothing, and the unit
            # of work's exit discards the connection.
            await self._transaction.roll_back_savepoint(savepoint, exc)
            raise
        else:
            await self._transaction.release_savepoint(savepoint)


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
