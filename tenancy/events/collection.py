"""Gathering the domain events a unit of work's repositories raised.

Aggregates keep their events until commit (``record_event``); bulk statements
leave theirs on the repository (``loose_events``). At commit the unit of work
pulls them all; a rolled-back savepoint rewinds them to where it began.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from tenancy.events.domain_event import DomainEvent


class EventSource(Protocol):
    """Something that hands out aggregates and may hold events of bulk changes."""

    @property
    def seen(self) -> Mapping[int, object]:
        """Aggregates handed out so far, by object identity."""

    @property
    def loose_events(self) -> list[DomainEvent]:
        """Events of rows changed without being loaded (bulk statements)."""

    def _release(self) -> None:
        """Forget every aggregate and event (the unit of work has ended)."""


class HeldAggregates:
    """The aggregates a unit of work holds for their pending events, as an event source."""

    def __init__(self, held: dict[int, object]) -> None:
        self.seen = held
        self.loose_events: list[DomainEvent] = []

    def _release(self) -> None:
        self.seen.clear()
        self.loose_events.clear()


def pull_events(loose: list[DomainEvent], sources: Iterable[EventSource]) -> list[DomainEvent]:
    """Return and forget every pending event, ordered by when it was raised."""
    events: list[DomainEvent] = list(loose)
    loose.clear()
    for source in sources:
        for obj in source.seen.values():
            pull = getattr(obj, "pull_events", None)
            if pull is not None:
                events.extend(pull())
        events.extend(source.loose_events)
        source.loose_events.clear()
    # Stable sort: events of one aggregate keep the order they were raised in.
    events.sort(key=lambda e: e.occurred_at)
    return events


def _pending_lists(
    loose: list[DomainEvent], sources: Iterable[EventSource]
) -> list[list[DomainEvent]]:
    lists = [loose]
    for source in sources:
        lists.append(source.loose_events)
        lists.extend(
            obj.__dict__["_pending_events"]
            for obj in source.seen.values()
            if "_pending_events" in obj.__dict__
        )
    return lists


def event_marks(loose: list[DomainEvent], sources: Iterable[EventSource]) -> dict[int, int]:
    """Return how many events each pending list holds now, to rewind to later."""
    return {id(events): len(events) for events in _pending_lists(loose, sources)}


def rewind_events(
    marks: dict[int, int], loose: list[DomainEvent], sources: Iterable[EventSource]
) -> None:
    """Drop the events raised since ``marks`` were taken (lists born since: all of them)."""
    for events in _pending_lists(loose, sources):
        del events[marks.get(id(events), 0) :]
