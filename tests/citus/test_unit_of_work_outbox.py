"""The unit of work's outbox on a Citus coordinator: a row and its events commit together or
not at all, in order, in the tenant's shard, and the relay listening on the coordinator
hears of every commit that wrote events.

Every unit of work runs as the app role (not superuser, BYPASSRLS or owner) through
``repositories.PlatformDatabase``; the superuser only inspects.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from repositories import PlatformDatabase
from repositories.domain_events import PaymentOrderStatusChanged
from repositories.models import Customer, Organization
from tenancy.errors import Conflict, IsolationViolation, TransactionAborted
from tenancy.events.outbox import OUTBOX_CHANNEL, insert_events
from tests.citus import outbox_schema
from tests.citus.cluster import CitusCluster
from tests.citus.outbox_schema import customer_count, outbox_rows


async def new_organization(db: PlatformDatabase) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name="org"))
    return org_id


def new_customer() -> Customer:
    return Customer(email=f"{uuid.uuid4().hex}@example.com", name="c")


def status_change(order_id: str, step: int = 0) -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(
        aggregate_id=order_id, old_status=f"s{step}", new_status=f"s{step + 1}"
    )


@pytest.fixture
async def notifications(cluster: CitusCluster) -> AsyncIterator[asyncio.Queue[str]]:
    """Payloads of the outbox notifications on the coordinator, where the relay listens."""
    received: asyncio.Queue[str] = asyncio.Queue()
    connection = await cluster.connect(outbox_schema.DBNAME, user=outbox_schema.RELAY)
    await connection.add_listener(
        OUTBOX_CHANNEL, lambda _conn, _pid, _channel, payload: received.put_nowait(payload)
    )
    try:
        yield received
    finally:
        await connection.close()


async def test_add_and_commit_writes_the_row_and_its_created_event_once(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    org_id = await new_organization(platform_db)
    customer = new_customer()

    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(customer)
        await uow.commit()

    rows = await outbox_rows(cluster, [str(customer.id)])
    assert await customer_count(cluster, customer.id) == 1
    assert [(r["org_id"], r["event_type"], r["status"]) for r in rows] == [
        (org_id, "CustomerCreated", "pending")
    ]


async def test_a_rolled_back_add_writes_neither_the_row_nor_its_event(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    org_id = await new_organization(platform_db)
    rolled_back, abandoned = new_customer(), new_customer()

    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(rolled_back)
        await uow.rollback()
        await uow.customers.add(abandoned)
        uow.collect(status_change(str(abandoned.id)))
    # Left without commit: rolled back.

    assert await customer_count(cluster, rolled_back.id) == 0
    assert await customer_count(cluster, abandoned.id) == 0
    assert await outbox_rows(cluster, [str(rolled_back.id), str(abandoned.id)]) == []


async def test_a_commit_after_a_caught_error_writes_nothing_and_says_so(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    org_id = await new_organization(platform_db)
    taken = new_customer()
    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(taken)
        await uow.commit()
    kept = new_customer()

    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(kept)
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=taken.email, name="again"))
        with pytest.raises(TransactionAborted):
            await uow.commit()

    assert await customer_count(cluster, kept.id) == 0
    assert await outbox_rows(cluster, [str(kept.id)]) == []


async def test_events_of_one_commit_keep_the_order_they_were_raised_in(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    org_id = await new_organization(platform_db)
    order_id = str(uuid.uuid4())
    raised = [status_change(order_id, step) for step in range(40)]

    async with platform_db.unit_of_work(org_id) as uow:
        for event in raised:
            uow.collect(event)
        await uow.commit()

    rows = await outbox_rows(cluster, [order_id])
    assert [r["id"] for r in rows] == [e.event_id for e in raised]


async def test_a_commit_that_wrote_events_wakes_the_relay_on_the_coordinator(
    platform_db: PlatformDatabase, notifications: asyncio.Queue[str]
) -> None:
    org_id = await new_organization(platform_db)

    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(new_customer())
        await uow.commit()

    async with asyncio.timeout(30):
        assert await notifications.get() == ""


async def test_a_rolled_back_unit_of_work_wakes_no_one(
    cluster: CitusCluster, platform_db: PlatformDatabase, notifications: asyncio.Queue[str]
) -> None:
    org_id = await new_organization(platform_db)
    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(new_customer())
        await uow.rollback()
    # A marker sent after it: had the rollback notified, that would arrive first.
    marker = await cluster.connect(outbox_schema.DBNAME)
    try:
        await marker.execute("SELECT pg_notify($1, 'marker')", OUTBOX_CHANNEL)
    finally:
        await marker.close()

    async with asyncio.timeout(30):
        assert await notifications.get() == "marker"


async def test_each_tenant_sees_only_its_own_outbox_rows(platform_db: PlatformDatabase) -> None:
    tenants = [await new_organization(platform_db) for _ in range(6)]
    for org_id in tenants:
        async with platform_db.unit_of_work(org_id) as uow:
            await uow.customers.add(new_customer())
            await uow.commit()

    for org_id in tenants:
        async with platform_db.unit_of_work(org_id) as uow:
            seen = await uow.session.execute(text("SELECT DISTINCT org_id FROM outbox_events"))
            assert list(seen.scalars()) == [org_id]


async def test_an_event_for_another_tenant_is_refused(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    mine, theirs = await new_organization(platform_db), await new_organization(platform_db)
    event = status_change(str(uuid.uuid4()))

    async with platform_db.unit_of_work(mine) as uow:
        with pytest.raises(IsolationViolation):
            await insert_events(await uow.driver(), theirs, [event])

    assert await outbox_rows(cluster, [event.aggregate_id]) == []


async def test_without_a_tenant_the_outbox_shows_nothing(
    cluster: CitusCluster, platform_db: PlatformDatabase
) -> None:
    org_id = await new_organization(platform_db)
    async with platform_db.unit_of_work(org_id) as uow:
        await uow.customers.add(new_customer())
        await uow.commit()

    connection = await cluster.connect(outbox_schema.DBNAME, user=outbox_schema.APP)
    try:
        async with connection.transaction():
            assert await connection.fetchval("SELECT count(*) FROM outbox_events") == 0
    finally:
        await connection.close()
