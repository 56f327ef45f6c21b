"""In-process subscribers: run after commit, never after rollback, failures logged."""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from repositories import PlatformDatabase
from repositories.models import Customer, OutboxEvent
from tenancy import Database
from tenancy.events.bus import EventBus
from tenancy.events.domain_event import DomainEvent


class InvoiceSent(DomainEvent):
    aggregate_type: ClassVar[str] = "invoice"


class ReminderSent(InvoiceSent):
    pass


def database_with(db: Database, bus: EventBus) -> Database:
    return PlatformDatabase(db.engine, db.settings, dispatcher=bus)


async def outbox_count(db: Database, org_id: uuid.UUID) -> int:
    async with db.session(org_id) as session:
        return int((await session.execute(select(func.count(OutboxEvent.id)))).scalar_one())


async def test_handler_receives_events_of_its_type_and_subtypes() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def record(event: InvoiceSent) -> None:
        seen.append(event.event_type())

    bus.subscribe(InvoiceSent, record)
    await bus.dispatch([InvoiceSent(aggregate_id="i"), ReminderSent(aggregate_id="i")])

    assert seen == ["InvoiceSent", "ReminderSent"]


async def test_handler_ignores_events_of_other_types() -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []

    async def record(event: ReminderSent) -> None:
        seen.append(event)

    bus.subscribe(ReminderSent, record)
    await bus.dispatch([InvoiceSent(aggregate_id="i")])

    assert seen == []


async def test_failing_handler_is_logged_and_later_handlers_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []
    event = InvoiceSent(aggregate_id="i")

    async def explode(event: InvoiceSent) -> None:
        raise ValueError("mailer down")

    async def record(event: InvoiceSent) -> None:
        seen.append(event)

    bus.subscribe(InvoiceSent, explode)
    bus.subscribe(InvoiceSent, record)
    with caplog.at_level(logging.ERROR, logger="tenancy"):
        await bus.dispatch([event])

    assert seen == [event]
    [failure] = [r for r in caplog.records if r.name == "tenancy.events.bus"]
    assert str(event.event_id) in failure.getMessage()
    assert failure.exc_info is not None
    assert isinstance(failure.exc_info[1], ValueError)


async def test_error_hook_receives_the_failed_event() -> None:
    failures: list[tuple[DomainEvent, Exception]] = []
    bus = EventBus(on_error=lambda event, exc: failures.append((event, exc)))
    event = InvoiceSent(aggregate_id="i")

    async def explode(event: InvoiceSent) -> None:
        raise ValueError("mailer down")

    bus.subscribe(InvoiceSent, explode)
    await bus.dispatch([event])

    assert [(e, type(x)) for e, x in failures] == [(event, ValueError)]


async def test_subscribers_run_after_the_unit_of_work_commits(
    db: Database, org_a: uuid.UUID
) -> None:
    bus = EventBus()
    committed_rows: list[int] = []

    async def count_outbox(event: DomainEvent) -> None:
        # Another transaction sees the outbox row: the handler runs after COMMIT.
        committed_rows.append(await outbox_count(db, org_a))

    bus.subscribe(DomainEvent, count_outbox)
    async with database_with(db, bus).unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email="sub@example.com"))
        await uow.commit()

    assert committed_rows == [1]


async def test_subscribers_never_run_for_rolled_back_work(db: Database, org_a: uuid.UUID) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []

    async def record(event: DomainEvent) -> None:
        seen.append(event)

    bus.subscribe(DomainEvent, record)
    async with database_with(db, bus).unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email="never@example.com"))

    assert seen == []
    assert await outbox_count(db, org_a) == 0


async def test_failing_subscriber_keeps_the_commit(
    db: Database, org_a: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus()

    async def explode(event: DomainEvent) -> None:
        raise ValueError("mailer down")

    bus.subscribe(DomainEvent, explode)
    with caplog.at_level(logging.ERROR, logger="tenancy"):
        async with database_with(db, bus).unit_of_work(org_a) as uow:
            await uow.customers.add(Customer(email="kept@example.com"))
            await uow.commit()

    assert await outbox_count(db, org_a) == 1
    assert any(r.name == "tenancy.events.bus" for r in caplog.records)
