"""A caught database error aborts the transaction: commit must not report success."""

from __future__ import annotations

import uuid
from contextlib import suppress

import pytest

from repositories.models import Customer
from tenancy import Conflict, Database
from tenancy.errors import TransactionAborted
from tests.faults.conftest import OpenDatabase
from tests.faults.support import FaultDatabase, customer, new_organization


@pytest.fixture
async def db(open_database: OpenDatabase) -> Database:
    return await open_database(pool_size=1)


@pytest.fixture
async def taken(db: Database) -> tuple[uuid.UUID, str]:
    """An organization and the email of a customer it already has (committed)."""
    org_id = await new_organization(db)
    existing = customer()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(existing)
        await uow.commit()
    return org_id, existing.email


async def test_commit_after_a_caught_conflict_raises_transaction_aborted(
    db: Database, taken: tuple[uuid.UUID, str]
) -> None:
    org_id, email = taken
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(customer())
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=email))
        with pytest.raises(TransactionAborted):
            await uow.commit()


async def test_commit_after_a_caught_conflict_persists_neither_the_row_nor_its_event(
    db: Database, taken: tuple[uuid.UUID, str], fault_db: FaultDatabase
) -> None:
    org_id, email = taken
    kept = customer()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(kept)
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=email))
        with suppress(TransactionAborted):
            await uow.commit()
    assert await fault_db.customer_counts([kept.id]) == {}
    assert await fault_db.outbox_counts([kept.id]) == {}


async def test_a_statement_after_a_caught_conflict_raises_transaction_aborted(
    db: Database, taken: tuple[uuid.UUID, str]
) -> None:
    org_id, email = taken
    async with db.unit_of_work(org_id) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=email))
        with pytest.raises(TransactionAborted):
            await uow.customers.count()


async def test_an_insert_after_a_caught_conflict_raises_transaction_aborted(
    db: Database, taken: tuple[uuid.UUID, str]
) -> None:
    org_id, email = taken
    async with db.unit_of_work(org_id) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=email))
        with pytest.raises(TransactionAborted):
            await uow.customers.add(customer())


async def test_a_unit_of_work_after_an_aborted_one_works(
    db: Database, taken: tuple[uuid.UUID, str], fault_db: FaultDatabase
) -> None:
    org_id, email = taken
    with suppress(TransactionAborted):
        async with db.unit_of_work(org_id) as uow:
            with pytest.raises(Conflict):
                await uow.customers.add(Customer(email=email))
            await uow.commit()
    after = customer()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(after)
        await uow.commit()
    assert await fault_db.customer_counts([after.id]) == {after.id: 1}


async def test_a_savepoint_around_the_conflicting_insert_lets_the_rest_commit(
    db: Database, taken: tuple[uuid.UUID, str], fault_db: FaultDatabase
) -> None:
    org_id, email = taken
    before, after = customer(), customer()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(before)
        with pytest.raises(Conflict):
            async with uow.savepoint():
                await uow.customers.add(Customer(email=email))
        # Insert, on conflict look it up: the transaction is usable again.
        found = await uow.customers.find_by_email(email)
        assert found is not None
        await uow.customers.add(after)
        await uow.commit()
    assert await fault_db.customer_counts([before.id, after.id]) == {before.id: 1, after.id: 1}
    assert await fault_db.outbox_counts([before.id, after.id]) == {before.id: 1, after.id: 1}
