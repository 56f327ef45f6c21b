"""What a unit of work holds: one object per row, changes kept, unused aggregates freed."""

from __future__ import annotations

import gc
import uuid
import weakref
from typing import ClassVar

import pytest

from repositories.models import Customer
from tenancy import Database
from tenancy.events.domain_event import DomainEvent
from tests.unit_of_work.outbox_support import outbox_event_types


class CustomerFlagged(DomainEvent):
    """An event a service raises on an aggregate it loaded."""

    aggregate_type: ClassVar[str] = "customer"


async def _customer(db: Database, org_id: uuid.UUID, email: str) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        customer = await uow.customers.add(Customer(email=email))
        await uow.commit()
    return customer.id


async def _name(db: Database, org_id: uuid.UUID, customer_id: uuid.UUID) -> str:
    async with db.unit_of_work(org_id) as uow:
        return (await uow.customers.get(customer_id)).name


@pytest.mark.parametrize("read", ["get", "list"])
async def test_aggregate_changed_after_a_read_is_written_at_commit(
    db: Database, org_a: uuid.UUID, read: str
) -> None:
    customer_id = await _customer(db, org_a, f"{read}-change@example.com")
    async with db.unit_of_work(org_a) as uow:
        if read == "get":
            customer = await uow.customers.get(customer_id)
        else:
            [customer] = await uow.customers.list()
        customer.name = f"changed after {read}"
        await uow.commit()
    assert await _name(db, org_a, customer_id) == f"changed after {read}"


async def test_changed_aggregate_dropped_before_commit_is_still_written(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await _customer(db, org_a, "dropped-change@example.com")
    async with db.unit_of_work(org_a) as uow:
        (await uow.customers.get(customer_id)).name = "changed, then dropped"
        gc.collect()
        await uow.commit()
    assert await _name(db, org_a, customer_id) == "changed, then dropped"


async def test_one_row_is_one_object_within_a_unit_of_work(db: Database, org_a: uuid.UUID) -> None:
    customer_id = await _customer(db, org_a, "same-object@example.com")
    async with db.unit_of_work(org_a) as uow:
        by_get = await uow.customers.get(customer_id)
        [by_list] = await uow.customers.list()
        assert by_list is by_get


async def test_unchanged_aggregate_the_caller_drops_is_freed_at_once(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await _customer(db, org_a, "freed-early@example.com")
    gc.disable()
    try:
        async with db.unit_of_work(org_a) as uow:
            ref = weakref.ref(await uow.customers.get(customer_id))
            # Held weakly, like SQLAlchemy's identity map: nothing keeps it alive.
            assert ref() is None
    finally:
        gc.enable()


async def test_event_recorded_on_a_dropped_aggregate_still_reaches_the_outbox(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await _customer(db, org_a, "event-dropped@example.com")
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.get(customer_id)
        customer.record_event(CustomerFlagged(aggregate_id=str(customer_id)))
        del customer
        gc.collect()
        await uow.commit()
    assert "CustomerFlagged" in await outbox_event_types(db, org_a, customer_id)


async def test_aggregate_changed_after_add_is_written_at_commit(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="add-change@example.com"))
        customer.name = "changed after add"
        await uow.commit()
    assert await _name(db, org_a, customer.id) == "changed after add"


async def test_added_aggregate_is_the_object_a_later_get_returns(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        added = await uow.customers.add(Customer(email="add-then-get@example.com"))
        assert await uow.customers.get(added.id) is added


async def test_event_recorded_on_an_added_aggregate_reaches_the_outbox(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="add-event@example.com"))
        customer.record_event(CustomerFlagged(aggregate_id=str(customer.id)))
        await uow.commit()
    assert sorted(await outbox_event_types(db, org_a, customer.id)) == [
        "CustomerCreated",
        "CustomerFlagged",
    ]


async def test_events_recorded_before_a_rolled_back_savepoint_are_kept(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await _customer(db, org_a, "before-savepoint@example.com")
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.get(customer_id)
        customer.record_event(CustomerFlagged(aggregate_id=str(customer_id)))
        del customer
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.customers.add(Customer(email="inside-savepoint@example.com"))
                raise RuntimeError("abandon")
        gc.collect()
        await uow.commit()
    assert "CustomerFlagged" in await outbox_event_types(db, org_a, customer_id)
