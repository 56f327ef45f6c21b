"""Writing the outbox: events exist if and only if their transaction committed."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

import asyncpg
import pytest
from sqlalchemy import select

from repositories.models import Customer, OutboxEvent
from tenancy import Database, TenancySettings
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import BATCH, OUTBOX_CHANNEL, write_outbox
from tenancy.settings import RELAY_ROLE


class ParcelShipped(DomainEvent):
    aggregate_type: ClassVar[str] = "parcel"

    carrier: str


async def outbox_rows(db: Database, org_id: uuid.UUID) -> list[OutboxEvent]:
    async with db.session(org_id) as session:
        result = await session.execute(select(OutboxEvent).order_by(OutboxEvent.position))
        return list(result.scalars())


async def test_committed_events_are_stored_with_their_order(db: Database, org_a: uuid.UUID) -> None:
    first = ParcelShipped(aggregate_id="p-1", carrier="dhl")
    second = ParcelShipped(aggregate_id="p-1", carrier="ups")
    async with db.session(org_a) as session:
        await write_outbox(session, [first, second])

    rows = await outbox_rows(db, org_a)
    assert [(r.id, r.position) for r in rows] == [(first.event_id, 0), (second.event_id, 1)]
    assert rows[0].org_id == org_a
    assert (rows[0].aggregate_type, rows[0].aggregate_id) == ("parcel", "p-1")
    assert rows[0].event_type == "ParcelShipped"
    assert rows[0].payload == first.payload()
    assert rows[0].status == "pending"
    assert rows[0].occurred_at < rows[1].occurred_at


async def test_rolled_back_transaction_leaves_no_event(db: Database, org_a: uuid.UUID) -> None:
    with pytest.raises(RuntimeError):
        async with db.session(org_a) as session:
            await write_outbox(session, [ParcelShipped(aggregate_id="p-2", carrier="dhl")])
            raise RuntimeError("abandon the work")

    assert await outbox_rows(db, org_a) == []


async def test_writing_no_events_writes_nothing(db: Database, org_a: uuid.UUID) -> None:
    async with db.session(org_a) as session:
        await write_outbox(session, [])

    assert await outbox_rows(db, org_a) == []


async def listen(settings: TenancySettings) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    url = settings.url_for_role(RELAY_ROLE).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    received: asyncio.Queue[str] = asyncio.Queue()
    await connection.add_listener(
        OUTBOX_CHANNEL, lambda _conn, _pid, _channel, payload: received.put_nowait(payload)
    )
    return connection, received


async def test_commit_wakes_the_relay_channel(
    db: Database, settings: TenancySettings, org_a: uuid.UUID
) -> None:
    connection, received = await listen(settings)
    try:
        async with db.session(org_a) as session:
            await write_outbox(session, [ParcelShipped(aggregate_id="p-3", carrier="dhl")])
        assert await asyncio.wait_for(received.get(), timeout=5) == ""
    finally:
        await connection.close()


async def test_rollback_sends_no_notification(
    db: Database, settings: TenancySettings, org_a: uuid.UUID
) -> None:
    connection, received = await listen(settings)
    try:
        with pytest.raises(RuntimeError):
            async with db.session(org_a) as session:
                await write_outbox(session, [ParcelShipped(aggregate_id="p-4", carrier="dhl")])
                raise RuntimeError("abandon the work")
        # Notifications arrive in commit order: a marker committed afterwards must
        # be the first thing heard if the rolled-back one was never sent.
        await connection.execute("SELECT pg_notify($1, 'marker')", OUTBOX_CHANNEL)
        assert await asyncio.wait_for(received.get(), timeout=5) == "marker"
    finally:
        await connection.close()


async def test_a_unit_of_work_commit_that_wrote_events_wakes_the_relay_channel(
    db: Database, settings: TenancySettings, org_a: uuid.UUID
) -> None:
    connection, received = await listen(settings)
    try:
        async with db.unit_of_work(org_a) as uow:
            await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@example.com"))
            await uow.commit()
        assert await asyncio.wait_for(received.get(), timeout=5) == ""
    finally:
        await connection.close()


async def test_a_unit_of_work_commit_without_events_sends_no_notification(
    db: Database, settings: TenancySettings, org_a: uuid.UUID
) -> None:
    connection, received = await listen(settings)
    try:
        async with db.unit_of_work(org_a) as uow:
            await uow.customers.count()
            await uow.commit()
        await connection.execute("SELECT pg_notify($1, 'marker')", OUTBOX_CHANNEL)
        assert await asyncio.wait_for(received.get(), timeout=5) == "marker"
    finally:
        await connection.close()


async def test_events_beyond_one_statements_batch_are_all_stored_in_order(
    db: Database, org_a: uuid.UUID
) -> None:
    written = [ParcelShipped(aggregate_id="p-5", carrier=f"c{i}") for i in range(BATCH + 2)]
    collected = [ParcelShipped(aggregate_id="p-6", carrier=f"c{i}") for i in range(BATCH + 2)]
    async with db.session(org_a) as session:
        await write_outbox(session, written)
    async with db.unit_of_work(org_a) as uow:
        for event in collected:
            uow.collect(event)
        await uow.commit()

    rows = await outbox_rows(db, org_a)
    by_time = sorted(rows, key=lambda r: (r.occurred_at, r.position))
    assert [r.id for r in by_time] == [e.event_id for e in [*written, *collected]]
    assert [r.position for r in rows if r.aggregate_id == "p-6"] == list(range(BATCH + 2))
