"""The outbox is tenant-owned: the app role sees its own tenant's rows only; the relay
role reads every tenant's rows and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from repositories.models import OutboxEvent
from tenancy import Database, IsolationViolation, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.outbox import OUTBOX_TABLE
from tenancy.settings import RELAY_ROLE

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
async def relay_engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, url=settings.url_for_role(RELAY_ROLE))
    yield engine
    await engine.dispose()


def an_event() -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id="o-1", old_status="a", new_status="b")


async def test_app_role_does_not_see_another_tenants_outbox_rows(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID, emit
) -> None:
    theirs = an_event()
    await emit(org_b, [theirs])

    async with db.session(org_a) as session:
        rows = await session.execute(select(OutboxEvent).where(OutboxEvent.id == theirs.event_id))
        assert rows.all() == []


async def test_app_role_cannot_write_an_event_into_another_tenant(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    row = {
        "org_id": org_b,
        "id": uuid.uuid4(),
        "aggregate_type": "payment_order",
        "aggregate_id": "o-1",
        "event_type": "Forged",
        "payload": {},
    }
    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(OUTBOX_TABLE.insert(), [row])


async def test_app_role_cannot_change_delivery_bookkeeping(
    db: Database, org_a: uuid.UUID, emit
) -> None:
    await emit(org_a, [an_event()])

    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(update(OutboxEvent).values(status="published"))


async def test_relay_role_reads_every_tenants_rows(
    relay_engine: AsyncEngine, org_a: uuid.UUID, org_b: uuid.UUID, emit
) -> None:
    ours, theirs = an_event(), an_event()
    await emit(org_a, [ours])
    await emit(org_b, [theirs])

    async with relay_engine.connect() as connection:
        found = await connection.execute(
            text("SELECT org_id FROM outbox_events WHERE id = ANY(:ids)"),
            {"ids": [ours.event_id, theirs.event_id]},
        )
        assert set(found.scalars()) == {org_a, org_b}


@pytest.mark.parametrize("table", ["customers", "organizations", "payment_orders", "wallets"])
async def test_relay_role_cannot_read_other_tables(relay_engine: AsyncEngine, table: str) -> None:
    async with relay_engine.connect() as connection:
        with pytest.raises(DBAPIError) as refused:
            # The table name comes from the parameter list above, not from input.
            await connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))
    assert getattr(refused.value.orig, "sqlstate", None) == "42501"


async def test_relay_role_cannot_insert_events(relay_engine: AsyncEngine, org_a: uuid.UUID) -> None:
    async with relay_engine.connect() as connection:
        with pytest.raises(DBAPIError) as refused:
            await connection.execute(
                text(
                    "INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id,"
                    " event_type, payload) VALUES (:org, gen_random_uuid(), 'x', 'x', 'x', '{}')"
                ),
                {"org": org_a},
            )
    assert getattr(refused.value.orig, "sqlstate", None) == "42501"
