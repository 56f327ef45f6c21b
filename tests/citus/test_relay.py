"""The relay on a Citus coordinator with ``outbox_events`` distributed by tenant: committed
events reach the broker in each aggregate's order, woken by the commits' notifications;
failures back off and hold their aggregate back; dead events are re-queued; published
rows are retained, then deleted.

The units of work run as the app role; the relay as its BYPASSRLS role, on the coordinator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories import PlatformDatabase
from repositories.lifecycle import AggregateCreated, AggregateUpdated, lifecycle_event
from repositories.models import Customer
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.admin import RelayAdmin
from tenancy.relay.claims import ClaimedEvent, Failure, RelayOutbox
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.worker import open_relay
from tests.citus.cluster import CitusCluster
from tests.citus.outbox_schema import fetch
from tests.citus.test_unit_of_work_outbox import new_customer, new_organization, status_change

CUSTOMER_EVENTS = [
    lifecycle_event(AggregateCreated, "Customer", "customers"),
    lifecycle_event(AggregateUpdated, "Customer", "customers"),
]


@pytest.fixture
async def relay_engine(
    outbox_settings: TenancySettings, relay_settings: RelaySettings
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(outbox_settings, url=relay_url(outbox_settings, relay_settings))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def outbox(relay_engine: AsyncEngine, relay_settings: RelaySettings) -> RelayOutbox:
    return RelayOutbox(relay_engine, relay_settings)


async def emit(db: PlatformDatabase, org_id: uuid.UUID, events: Sequence[DomainEvent]) -> None:
    async with db.unit_of_work(org_id) as uow:
        for event in events:
            uow.collect(event)
        await uow.commit()


async def claim_own(outbox: RelayOutbox, org_id: uuid.UUID) -> list[ClaimedEvent]:
    """Claim, and give back at once what belongs to other tests' tenants."""
    claimed = await outbox.claim()
    await outbox.settle([], [], [e for e in claimed if e.org_id != org_id])
    return [e for e in claimed if e.org_id == org_id]


async def status(cluster: CitusCluster, event_id: uuid.UUID) -> tuple[str, int, bool]:
    [row] = await fetch(
        cluster,
        "SELECT status, attempts, available_at > now() AS waiting FROM outbox_events WHERE id = $1",
        event_id,
    )
    return row["status"], row["attempts"], row["waiting"]


async def test_the_relay_delivers_committed_events_in_each_aggregates_order(
    platform_db: PlatformDatabase,
    outbox_settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
) -> None:
    # Polling once an hour: every delivery below is woken by a commit's notification.
    relay_settings = relay_settings.model_copy(update={"poll_interval": 3600.0})
    tenants = [await new_organization(platform_db) for _ in range(4)]
    expected: dict[str, list[uuid.UUID]] = defaultdict(list)
    async with (
        open_relay(outbox_settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        EventConsumer(
            kafka_settings, CUSTOMER_EVENTS, topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        assert relay.listener is not None
        async with asyncio.timeout(30):
            await relay.listener.connected.wait()
            await relay.idle.wait()
        for org_id in tenants:
            for _ in range(2):
                customer = new_customer()
                async with platform_db.unit_of_work(org_id) as uow:
                    await uow.customers.add(customer)
                    await uow.commit()
                for name in ("first", "second"):
                    async with platform_db.unit_of_work(org_id) as uow:
                        await uow.customers.update(customer.id, {"name": name})
                        await uow.commit()
                async with platform_db.unit_of_work(org_id) as uow:
                    await uow.customers.update(customer.id, {"name": "never"})
                    await uow.rollback()
                events = await _outbox_ids(platform_db, org_id, customer)
                expected[str(customer.id)] = events
        received: dict[str, list[uuid.UUID]] = defaultdict(list)
        async with asyncio.timeout(30):
            wanted = sum(len(ids) for ids in expected.values())
            while sum(len(ids) for ids in received.values()) < wanted:
                for event in await consumer.take(1):
                    if event.org_id in tenants:
                        received[event.event.aggregate_id].append(event.event.event_id)

    assert received == expected
    assert all(len(ids) == 3 for ids in expected.values())


async def _outbox_ids(
    db: PlatformDatabase, org_id: uuid.UUID, customer: Customer
) -> list[uuid.UUID]:
    # As the tenant: the ids of the customer's events in outbox order.
    async with db.unit_of_work(org_id) as uow:
        rows = await (await uow.driver()).fetch(
            "SELECT id FROM outbox_events WHERE aggregate_id = $1 ORDER BY occurred_at, position",
            str(customer.id),
        )
    return [r["id"] for r in rows]


async def test_a_claim_leases_an_aggregates_events_in_order_and_away_from_other_relays(
    platform_db: PlatformDatabase, outbox: RelayOutbox, relay_engine: AsyncEngine
) -> None:
    org_id = await new_organization(platform_db)
    order_id = str(uuid.uuid4())
    first, second, third = (status_change(order_id, step) for step in range(3))
    await emit(platform_db, org_id, [first, second])
    await emit(platform_db, org_id, [third])
    other = RelayOutbox(
        relay_engine, outbox.settings.model_copy(update={"relay_id": "another-relay"})
    )

    claimed = await claim_own(outbox, org_id)

    assert [e.id for e in claimed] == [first.event_id, second.event_id, third.event_id]
    assert await claim_own(other, org_id) == []
    await outbox.settle(claimed, [], [])


async def test_a_failed_event_backs_off_and_holds_its_aggregate_back(
    cluster: CitusCluster, platform_db: PlatformDatabase, relay_engine: AsyncEngine
) -> None:
    settings = RelaySettings(relay_id=f"relay-{uuid.uuid4().hex[:8]}", backoff_initial=600.0)
    outbox = RelayOutbox(relay_engine, settings)
    org_id = await new_organization(platform_db)
    failing, later, other = status_change("o-1"), status_change("o-1", 1), status_change("o-2")
    await emit(platform_db, org_id, [failing, later, other])
    claimed = {e.id: e for e in await claim_own(outbox, org_id)}

    retry = outbox.plan_retry(Failure(claimed[failing.event_id], "too large"))
    await outbox.settle([claimed[other.event_id]], [retry], [claimed[later.event_id]])

    assert await status(cluster, failing.event_id) == ("pending", 1, True)
    assert (await status(cluster, other.event_id))[0] == "published"
    assert await claim_own(outbox, org_id) == []


async def test_a_dead_event_is_requeued_and_claimed_first(
    cluster: CitusCluster, platform_db: PlatformDatabase, relay_engine: AsyncEngine
) -> None:
    settings = RelaySettings(relay_id=f"relay-{uuid.uuid4().hex[:8]}", max_attempts=1)
    outbox = RelayOutbox(relay_engine, settings)
    org_id = await new_organization(platform_db)
    dead, waiting = status_change("o-1"), status_change("o-1", 1)
    await emit(platform_db, org_id, [dead, waiting])
    claimed = {e.id: e for e in await claim_own(outbox, org_id)}
    retry = outbox.plan_retry(Failure(claimed[dead.event_id], "invalid"))
    await outbox.settle([], [retry], [claimed[waiting.event_id]])
    assert await claim_own(outbox, org_id) == []

    requeued = await RelayAdmin(relay_engine).requeue(dead.event_id)

    assert requeued.id == dead.event_id
    assert [e.id for e in await claim_own(outbox, org_id)] == [dead.event_id, waiting.event_id]
    assert await status(cluster, dead.event_id) == ("pending", 0, True)


async def test_published_events_past_their_retention_are_deleted(
    cluster: CitusCluster, platform_db: PlatformDatabase, relay_engine: AsyncEngine
) -> None:
    settings = RelaySettings(relay_id=f"relay-{uuid.uuid4().hex[:8]}", retention_seconds=0)
    outbox = RelayOutbox(relay_engine, settings)
    org_id = await new_organization(platform_db)
    events = [status_change("o-1", step) for step in range(3)]
    await emit(platform_db, org_id, events)
    await outbox.settle(await claim_own(outbox, org_id), [], [])

    await outbox.delete_published()

    rows = await fetch(
        cluster, "SELECT id FROM outbox_events WHERE id = ANY($1)", [e.event_id for e in events]
    )
    assert rows == []
