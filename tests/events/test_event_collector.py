"""The event collector: what a unit of work's commit, rollback and savepoints take from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenancy.events.collector import EventCollector
from tenancy.events.domain_event import DomainEvent

_START = datetime(2026, 1, 1, tzinfo=UTC)


class Happened(DomainEvent):
    aggregate_type = "thing"


def _event(seconds: int) -> Happened:
    return Happened(aggregate_id="a", occurred_at=_START + timedelta(seconds=seconds))


class _Aggregate:
    def __init__(self, *events: DomainEvent) -> None:
        self._pending_events = list(events)

    def pull_events(self) -> list[DomainEvent]:
        events, self._pending_events = self._pending_events, []
        return events


def test_pull_returns_loose_and_held_events_in_the_order_they_were_raised() -> None:
    held: dict[int, object] = {}
    collector = EventCollector(held)
    aggregate = _Aggregate(_event(1), _event(3))
    held[id(aggregate)] = aggregate
    collector.collect(_event(2))
    assert [e.occurred_at.second for e in collector.pull()] == [1, 2, 3]
    assert collector.pull() == []


def test_committed_adds_the_written_events_once() -> None:
    collector = EventCollector({})
    collector.written(_event(2))
    assert [e.occurred_at.second for e in collector.committed([_event(1)])] == [1, 2]
    assert collector.committed([]) == []


def test_rewind_drops_what_was_raised_and_written_since_the_mark() -> None:
    held: dict[int, object] = {}
    collector = EventCollector(held)
    aggregate = _Aggregate(_event(1))
    held[id(aggregate)] = aggregate
    marks = collector.mark()
    aggregate._pending_events.append(_event(2))
    collector.collect(_event(3))
    collector.written(_event(4))
    collector.rewind(marks)
    assert collector.written_count == 0
    assert [e.occurred_at.second for e in collector.pull()] == [1]
