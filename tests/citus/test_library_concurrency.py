"""The library's unit of work on a coordinator under concurrency: hundreds of units of
work over tens of tenants, each seeing only its own rows, every acknowledged commit
there once with its event."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy.schema.migration import upgrade
from tests.citus.cluster import CitusCluster
from tests.citus.conftest import library_database

DBNAME = "tenancy_concurrency"
TENANTS = 20
TASKS = 300


@pytest.fixture(scope="module")
def migrated(cluster: CitusCluster) -> None:
    """The library migrated on its own coordinator database."""
    upgrade(cluster.create_database(DBNAME))


@pytest.fixture
async def library(cluster: CitusCluster, migrated: None) -> AsyncIterator[PlatformDatabase]:
    """The library on the coordinator, as the app role, with a pool the tasks contend for."""
    async with library_database(cluster, DBNAME, pool_size=8, max_overflow=4) as database:
        yield database


async def _tenants(db: PlatformDatabase) -> list[uuid.UUID]:
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    for org_id in tenants:
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name="org"))
    return tenants


async def _add_then_list(
    db: PlatformDatabase, org_id: uuid.UUID
) -> tuple[uuid.UUID, set[uuid.UUID]]:
    async with db.unit_of_work(org_id) as uow:
        customer = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@example.com"))
        await uow.commit()
    async with db.unit_of_work(org_id) as uow:
        listed = {c.id for c in await uow.customers.list()}
    return customer.id, listed


async def test_hundreds_of_units_of_work_over_tens_of_tenants_stay_isolated(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    tenants = await _tenants(library)
    chosen = [random.choice(tenants) for _ in range(TASKS)]

    results = await asyncio.gather(*(_add_then_list(library, org_id) for org_id in chosen))

    connection = await cluster.connect(DBNAME)
    try:
        rows = await connection.fetch("SELECT org_id, id FROM customers")
        events = await connection.fetch(
            "SELECT org_id, aggregate_id FROM outbox_events WHERE aggregate_id = ANY($1::text[])",
            [str(customer_id) for customer_id, _ in results],
        )
    finally:
        await connection.close()
    owner = {row["id"]: row["org_id"] for row in rows}
    acknowledged = [customer_id for customer_id, _ in results]
    assert all(owner[c] == org_id for c, org_id in zip(acknowledged, chosen, strict=True))
    for (customer_id, listed), org_id in zip(results, chosen, strict=True):
        assert customer_id in listed
        assert {owner[c] for c in listed} == {org_id}
    assert Counter(owner.values()) == Counter(chosen)
    assert sorted(str(c) for c in acknowledged) == sorted(e["aggregate_id"] for e in events)
    assert all(e["org_id"] == owner[uuid.UUID(e["aggregate_id"])] for e in events)
