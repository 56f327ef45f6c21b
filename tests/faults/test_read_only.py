"""A read-only database: writes fail typed, reads go on working."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tenancy import Database
from tenancy.errors import DatabaseUnavailable, ReadOnlyDatabase
from tests.faults.conftest import OpenDatabase
from tests.faults.support import FaultDatabase, customer, new_customers, new_organization


@pytest.fixture
async def seeded(open_database: OpenDatabase) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An organization with two customers, written before the database turns read-only."""
    db: Database = await open_database()
    org_id = await new_organization(db)
    return org_id, await new_customers(db, org_id, 2)


@pytest.fixture
async def read_only_db(
    fault_db: FaultDatabase, open_database: OpenDatabase
) -> AsyncIterator[Database]:
    """A ``Database`` whose new sessions are read-only (default_transaction_read_only)."""
    await fault_db.server.set_read_only(fault_db.name, True)
    try:
        yield await open_database()  # fresh connections: they take the new default
    finally:
        await fault_db.server.set_read_only(fault_db.name, False)


async def test_a_write_to_a_read_only_database_raises_read_only_database(
    seeded: tuple[uuid.UUID, list[uuid.UUID]], read_only_db: Database, fault_db: FaultDatabase
) -> None:
    org_id, _ = seeded
    attempted = customer()
    with pytest.raises(ReadOnlyDatabase):
        async with read_only_db.unit_of_work(org_id) as uow:
            await uow.customers.add(attempted)
            await uow.commit()
    assert await fault_db.customer_counts([attempted.id]) == {}


def test_read_only_database_is_a_database_unavailable() -> None:
    # Callers that retry or fail over on DatabaseUnavailable handle it too.
    assert issubclass(ReadOnlyDatabase, DatabaseUnavailable)


async def test_reads_from_a_read_only_database_work(
    seeded: tuple[uuid.UUID, list[uuid.UUID]], read_only_db: Database
) -> None:
    org_id, ids = seeded
    async with read_only_db.unit_of_work(org_id) as uow:
        assert await uow.customers.count() == 2
        assert (await uow.customers.get(ids[0])).id == ids[0]
