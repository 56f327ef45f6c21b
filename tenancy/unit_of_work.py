"""The unit of work: one session, one transaction, explicit commit, events at commit.

Rules it keeps (after *Architecture Patterns with Python*):

* Nothing is written by accident: leaving the block without ``commit()`` rolls
  back; an exception rolls back and leaves as a typed ``TenancyError``.
* Events raised while it runs are written to the outbox inside the same
  transaction, just before COMMIT; in-process subscribers see them only after
  the commit succeeded, never after a rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from tenancy.errors import Conflict, raise_translated
from tenancy.events import DomainEvent
from tenancy.log import get_logger
from tenancy.session import open_session

logger = get_logger(__name__)

OutboxWriter = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[None]]


class EventDispatcher(Protocol):
    """Receives a committed transaction's events (in-process subscribers)."""

    async def dispatch(self, events: Sequence[DomainEvent]) -> None:
        """Deliver ``events``; must not raise for a failing handler."""


class EventSource(Protocol):
    """Something that hands out aggregates and may hold events of bulk changes."""

    @property
    def seen(self) -> Mapping[int, object]:
        """Aggregates handed out so far, by object identity."""

    @property
    def loose_events(self) -> list[DomainEvent]:
        """Events of rows changed without being loaded (bulk statements)."""


class UnitOfWork:
    """A tenant transaction shared by several repositories.

    Subclasses create their repositories in ``_start`` from ``self.session`` and
    list them in ``_event_sources`` so their events are collected at commit.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        org_id: uuid.UUID,
        *,
        outbox_writer: OutboxWriter | None = None,
        dispatcher: EventDispatcher | None = None,
        bind: AsyncEngine | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bind = bind
        self.org_id = org_id
        self._outbox_writer = outbox_writer
        self._dispatcher = dispatcher
        self._loose: list[DomainEvent] = []
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The session of the running unit of work."""
        if self._session is None:
            raise RuntimeError("the unit of work is not active; use `async with`")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = open_session(self._sessionmaker, self.org_id, bind=self._bind)
        self._start(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            # Whatever was not committed is discarded, error or not.
            await session.rollback()
        finally:
            await session.close()
            self._session = None
        if exc is not None and isinstance(exc, Exception):
            raise_translated(exc)

    def _start(self, session: AsyncSession) -> None:
        """Create the repositories on ``session`` (override)."""

    def _event_sources(self) -> Iterable[EventSource]:
        """Return the repositories whose events are collected at commit (override)."""
        return ()

    def collect(self, event: DomainEvent) -> None:
        """Queue an event not attached to any aggregate, written at commit."""
        self._loose.append(event)

    def _pull_events(self) -> list[DomainEvent]:
        events: list[DomainEvent] = list(self._loose)
        self._loose.clear()
        for source in self._event_sources():
            for obj in source.seen.values():
                pull = getattr(obj, "pull_events", None)
                if pull is not None:
                    events.extend(pull())
            events.extend(source.loose_events)
            source.loose_events.clear()
        # Stable sort: events of one aggregate keep the order they were raised in.
        events.sort(key=lambda e: e.occurred_at)
        return events

    async def commit(self) -> None:
        """Write pending changes and events, commit, then notify subscribers.

        Raises:
            Conflict, ForeignKeyViolation, IsolationViolation, RetryableError, ...:
                the transaction could not commit; it is rolled back.
        """
        session = self.session
        try:
            await session.flush()
            events = self._pull_events()
            if events and self._outbox_writer is not None:
                await self._outbox_writer(session, events)
            await session.commit()
        except StaleDataError as exc:
            await session.rollback()
            raise Conflict("a row was changed by someone else (stale version)") from exc
        except Exception as exc:
            await session.rollback()
            raise_translated(exc)
            raise
        if events and self._dispatcher is not None:
            await self._dispatcher.dispatch(events)

    async def rollback(self) -> None:
        """Discard everything since the last commit, events included."""
        self._pull_events()
        await self.session.rollback()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block in a nested transaction; an error rolls back only the block.

        Events raised inside a rolled-back savepoint are discarded with it.
        """
        marks = self._event_marks()
        async with self.session.begin_nested():
            try:
                yield
            except BaseException:
                self._rewind(marks)
                raise

    def _event_marks(self) -> dict[int, int]:
        marks = {id(self._loose): len(self._loose)}
        for source in self._event_sources():
            marks[id(source.loose_events)] = len(source.loose_events)
            for obj in source.seen.values():
                pending = obj.__dict__.get("_pending_events")
                if pending is not None:
                    marks[id(pending)] = len(pending)
        return marks

    def _rewind(self, marks: dict[int, int]) -> None:
        lists: list[list[DomainEvent]] = [self._loose]
        for source in self._event_sources():
            lists.append(source.loose_events)
            lists.extend(
                obj.__dict__["_pending_events"]
                for obj in source.seen.values()
                if "_pending_events" in obj.__dict__
            )
        for events in lists:
            del events[marks.get(id(events), 0) :]
