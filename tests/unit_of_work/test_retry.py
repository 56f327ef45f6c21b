"""run_with_retry: a real serialization failure re-runs the whole unit of work."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from repositories.models import Customer
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy import Database, RetryableError
from tenancy.retry import run_with_retry


async def _customer(db: Database, org_id: uuid.UUID) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        customer = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@r.example"))
        await uow.commit()
    return customer.id


async def _conflicting_update(
    db: Database, org_id: uuid.UUID, customer_id: uuid.UUID, read_done: asyncio.Event
) -> None:
    """Update the row after the other transaction read it, so it cannot commit."""
    await read_done.wait()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.update(customer_id, {"name": "first writer"})
        await uow.commit()


async def test_serialization_failure_is_retried_until_it_succeeds(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await _customer(db, org_a)
    read_done = asyncio.Event()
    attempts = 0

    async def work(uow: PlatformUnitOfWork) -> str:
        nonlocal attempts
        attempts += 1
        customer = await uow.customers.get(customer_id)  # takes the snapshot
        if attempts == 1:
            read_done.set()
            await writer  # the other transaction commits a change to this row
        await uow.customers.update(customer.id, {"name": f"second writer {attempts}"})
        await uow.commit()
        return customer.name

    writer = asyncio.create_task(_conflicting_update(db, org_a, customer_id, read_done))
    await run_with_retry(lambda: db.unit_of_work(org_a, isolation_level="REPEATABLE READ"), work)
    assert attempts == 2
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.customers.get(customer_id)).name == "second writer 2"


async def test_retry_gives_up_after_the_bound(db: Database, org_a: uuid.UUID) -> None:
    calls = 0

    async def always_conflicts(uow: PlatformUnitOfWork) -> None:
        nonlocal calls
        calls += 1
        raise RetryableError("simulated by the work itself")

    with pytest.raises(RetryableError):
        await run_with_retry(lambda: db.unit_of_work(org_a), always_conflicts, attempts=3)
    assert calls == 3
