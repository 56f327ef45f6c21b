"""The events a unit of work holds until its transaction ends.

Three kinds wait here: events queued without an aggregate (``collect``), events
still on the aggregates and repositories the unit of work handed out (pulled at
commit through their ``EventSource``s), and events already written to the
outbox with their row (``written``), kept only to be dispatched after COMMIT.
A commit takes them all; a rollback forgets them all; a rolled-back savepoint
rewinds each list to where it began.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tenancy.events.collection import (
    EventSource,
    HeldAggregates,
    event_marks,
    pull_events,
    rewind_events,
)
from tenancy.events.domain_event import DomainEvent


@dataclass(frozen=True)
class EventMarks:
    """Where every pending list stood when a savepoint began."""

    pending: dict[int, int]
    written: int


class EventCollector:
    """Gather a unit of work's events from its held aggregates and repositories.

    ``held`` is the unit of work's map of aggregates kept alive for their
    pending events (its identity map fills it); it is read here as one more
    event source.
    """

    def __init__(self, held: dict[int, object]) -> None:
        self._loose: list[DomainEvent] = []
        # Events already in the outbox (written with their row), kept for dispatch.
        self._written: list[DomainEvent] = []
        self._held = HeldAggregates(held)
        # (attribute name, repository) for every repository created so far.
        self._repositories: list[tuple[str, EventSource]] = []

    def collect(self, event: DomainEvent) -> None:
        """Queue an event not attached to any aggregate."""
        self._loose.append(event)

    def add_repository(self, name: str, repository: EventSource) -> None:
        """Collect from ``repository`` (the unit of work's attribute ``name``) from now on."""
        self._repositories.append((name, repository))

    def release_repositories(self) -> list[str]:
        """Release every repository (their aggregates and events); return their names."""
        released, self._repositories = self._repositories, []
        for _, repository in released:
            repository._release()
        return [name for name, _ in released]

    def written(self, event: DomainEvent) -> None:
        """Remember an event already written to the outbox, for dispatch after commit."""
        self._written.append(event)

    @property
    def written_count(self) -> int:
        """How many events were written to the outbox with their row so far."""
        return len(self._written)

    def pull(self) -> list[DomainEvent]:
        """Return and forget every event still to be written, ordered by when it was raised."""
        return pull_events(self._loose, self._sources())

    def committed(self, pending: list[DomainEvent]) -> list[DomainEvent]:
        """Return the committed transaction's events (``pending`` and written) for dispatch."""
        events = sorted([*self._written, *pending], key=lambda e: e.occurred_at)
        self._written.clear()
        return events

    def forget_written(self) -> None:
        """Forget the written events: their transaction did not commit."""
        self._written.clear()

    def mark(self) -> EventMarks:
        """Return where every pending list stands now, to ``rewind`` to later."""
        return EventMarks(event_marks(self._loose, self._sources()), len(self._written))

    def rewind(self, marks: EventMarks) -> None:
        """Drop the events raised and written since ``marks`` were taken."""
        rewind_events(marks.pending, self._loose, self._sources())
        del self._written[marks.written :]

    def _sources(self) -> Iterable[EventSource]:
        return [self._held, *(repository for _, repository in self._repositories)]
