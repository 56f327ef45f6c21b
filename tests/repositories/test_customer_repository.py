"""CustomerRepository and CustomerSpecs: lookup by email, payment methods, the one default."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from repositories.customer_specs import CustomerSpecs
from repositories.domain_events import (
    DefaultPaymentMethodChanged,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodUpdated,
)
from repositories.models import Customer, PaymentMethod
from tenancy import Conflict, Database, InvalidData, NotFound
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    wait_until_blocked,
)


async def new_customer(db: Database, org_id: uuid.UUID, email: str = "c@example.com") -> Customer:
    async with db.unit_of_work(org_id) as uow:
        customer = await uow.customers.add(Customer(email=email, name="Carla"))
        await uow.commit()
    return customer


async def new_methods(
    db: Database, org_id: uuid.UUID, customer: Customer, count: int
) -> list[uuid.UUID]:
    async with db.unit_of_work(org_id) as uow:
        ids = [
            (await uow.customers.add_payment_method(customer.id, "card", last4=f"{i:04}")).id
            for i in range(count)
        ]
        await uow.commit()
    return ids


async def defaults(db: Database, org_id: uuid.UUID, customer: Customer) -> list[uuid.UUID]:
    async with db.unit_of_work(org_id) as uow:
        return [m.id for m in await uow.customers.payment_methods(customer.id) if m.is_default]


# -- customers by email ---------------------------------------------------------------


async def test_add_stores_the_email_lower_case(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a, " Carla@Example.COM ")
    assert customer.email == "carla@example.com"


async def test_find_by_email_ignores_case(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        found = await uow.customers.find_by_email("C@EXAMPLE.com")
        assert found is not None
        assert found.id == customer.id


async def test_find_by_email_never_returns_another_tenants_customer(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await new_customer(db, org_b, "shared@example.com")
    async with db.unit_of_work(org_a) as uow:
        assert await uow.customers.find_by_email("shared@example.com") is None


async def test_the_same_email_in_two_tenants_is_allowed(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    ours = await new_customer(db, org_a, "both@example.com")
    theirs = await new_customer(db, org_b, "both@example.com")
    assert ours.id != theirs.id


async def test_a_duplicate_email_in_one_tenant_conflicts(db: Database, org_a: uuid.UUID) -> None:
    await new_customer(db, org_a, "dup@example.com")
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email="DUP@example.com"))


async def test_upsert_matches_the_email_in_any_case(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a, "up@example.com")
    async with db.unit_of_work(org_a) as uow:
        updated = await uow.customers.upsert(
            {"email": "UP@example.com", "name": "New"}, update=["name"]
        )
        assert (updated.id, updated.name) == (customer.id, "New")


# -- adding payment methods ---------------------------------------------------------------


async def test_the_first_payment_method_becomes_the_default(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a)
    [first] = await new_methods(db, org_a, customer, 1)
    assert await defaults(db, org_a, customer) == [first]


async def test_a_later_payment_method_is_not_the_default_unless_asked(
    db: Database, org_a: uuid.UUID
) -> None:
    customer = await new_customer(db, org_a)
    first, _second = await new_methods(db, org_a, customer, 2)
    assert await defaults(db, org_a, customer) == [first]


async def test_adding_with_make_default_takes_over_the_default(
    db: Database, org_a: uuid.UUID
) -> None:
    customer = await new_customer(db, org_a)
    await new_methods(db, org_a, customer, 1)
    async with db.unit_of_work(org_a) as uow:
        newer = await uow.customers.add_payment_method(
            customer.id, "bank_account", make_default=True
        )
        await uow.commit()
    assert await defaults(db, org_a, customer) == [newer.id]


async def test_adding_raises_payment_method_added_on_the_customer(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    async with recording_db.unit_of_work(org_a) as uow:
        method = await uow.customers.add_payment_method(customer.id, "crypto_wallet")
        await uow.commit()
    [added] = recorded_events.of_type(PaymentMethodAdded)
    assert (added.aggregate_type, added.aggregate_id) == ("customer", str(customer.id))
    assert (added.payment_method_id, added.type, added.is_default) == (
        method.id,
        "crypto_wallet",
        True,
    )


async def test_adding_a_method_of_an_unknown_type_is_invalid(
    db: Database, org_a: uuid.UUID
) -> None:
    customer = await new_customer(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.customers.add_payment_method(customer.id, "cash")


@pytest.mark.parametrize("last4", ["123", "12345", "12a4", "١٢٣٤"])
async def test_adding_with_a_malformed_last4_is_invalid(
    db: Database, org_a: uuid.UUID, last4: str
) -> None:
    customer = await new_customer(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.customers.add_payment_method(customer.id, "card", last4=last4)


async def test_adding_to_another_tenants_customer_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await new_customer(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.customers.add_payment_method(theirs.id, "card")


async def test_payment_methods_of_an_unknown_customer_is_not_found(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.customers.payment_methods(uuid.uuid4())


async def test_the_database_refuses_a_second_default(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a)
    await new_methods(db, org_a, customer, 1)
    async with db.unit_of_work(org_a) as uow:
        uow.session.add(PaymentMethod(customer_id=customer.id, type="card", is_default=True))
        with pytest.raises(Conflict) as raised:
            await uow.commit()
    assert raised.value.constraint == "uq_payment_methods_one_default"


# -- updating and removing ---------------------------------------------------------------


async def test_update_payment_method_changes_label_and_last4(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    [method_id] = await new_methods(recording_db, org_a, customer, 1)
    changes = {"label": "Work card", "last4": "4242"}
    async with recording_db.unit_of_work(org_a) as uow:
        await uow.customers.update_payment_method(customer.id, method_id, changes)
        await uow.commit()
    async with recording_db.unit_of_work(org_a) as uow:
        [method] = await uow.customers.payment_methods(customer.id)
        assert (method.label, method.last4) == ("Work card", "4242")
    [updated] = recorded_events.of_type(PaymentMethodUpdated)
    assert (updated.payment_method_id, updated.changes) == (method_id, changes)


@pytest.mark.parametrize(
    "changes", [{"is_default": False}, {"customer_id": uuid.uuid4()}, {"last4": "42"}]
)
async def test_update_payment_method_refuses_other_columns_and_bad_values(
    db: Database, org_a: uuid.UUID, changes: dict[str, object]
) -> None:
    customer = await new_customer(db, org_a)
    [method_id] = await new_methods(db, org_a, customer, 1)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.customers.update_payment_method(customer.id, method_id, changes)


async def test_removing_a_method_raises_payment_method_removed(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    _first, second = await new_methods(recording_db, org_a, customer, 2)
    async with recording_db.unit_of_work(org_a) as uow:
        await uow.customers.remove_payment_method(customer.id, second)
        await uow.commit()
        assert [m.id for m in await uow.customers.payment_methods(customer.id)] == [_first]
    [removed] = recorded_events.of_type(PaymentMethodRemoved)
    assert (removed.aggregate_id, removed.payment_method_id) == (str(customer.id), second)
    assert recorded_events.of_type(DefaultPaymentMethodChanged) == []


async def test_removing_the_default_promotes_the_oldest_remaining_method(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    first, second, _third = await new_methods(recording_db, org_a, customer, 3)
    async with recording_db.unit_of_work(org_a) as uow:
        await uow.customers.remove_payment_method(customer.id, first)
        await uow.commit()
    assert await defaults(recording_db, org_a, customer) == [second]
    [changed] = recorded_events.of_type(DefaultPaymentMethodChanged)
    assert changed.payment_method_id == second


async def test_removing_the_only_method_leaves_no_default(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a)
    [only] = await new_methods(db, org_a, customer, 1)
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.remove_payment_method(customer.id, only)
        assert await uow.customers.default_payment_method(customer.id) is None


async def test_removing_another_customers_method_is_not_found(
    db: Database, org_a: uuid.UUID
) -> None:
    customer = await new_customer(db, org_a, "one@example.com")
    other = await new_customer(db, org_a, "two@example.com")
    [theirs] = await new_methods(db, org_a, other, 1)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.customers.remove_payment_method(customer.id, theirs)


# -- switching the default -------------------------------------------------------------


async def test_set_default_moves_the_default(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    _first, second = await new_methods(recording_db, org_a, customer, 2)
    async with recording_db.unit_of_work(org_a) as uow:
        method = await uow.customers.set_default(customer.id, second)
        assert method.is_default
        await uow.commit()
    assert await defaults(recording_db, org_a, customer) == [second]
    [changed] = recorded_events.of_type(DefaultPaymentMethodChanged)
    assert (changed.aggregate_id, changed.payment_method_id) == (str(customer.id), second)


async def test_set_default_to_the_current_default_changes_nothing(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer = await new_customer(recording_db, org_a)
    [first] = await new_methods(recording_db, org_a, customer, 1)
    async with recording_db.unit_of_work(org_a) as uow:
        await uow.customers.set_default(customer.id, first)
        await uow.commit()
    assert recorded_events.of_type(DefaultPaymentMethodChanged) == []


async def test_set_default_to_a_method_of_another_tenant_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    ours = await new_customer(db, org_a)
    await new_methods(db, org_a, ours, 1)
    theirs = await new_customer(db, org_b)
    [their_method] = await new_methods(db, org_b, theirs, 1)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.customers.set_default(ours.id, their_method)
        with pytest.raises(NotFound):
            await uow.customers.set_default(theirs.id, their_method)
    assert await defaults(db, org_b, theirs) == [their_method]


async def test_concurrent_set_default_calls_leave_exactly_one_default(
    db: Database, org_a: uuid.UUID
) -> None:
    customer = await new_customer(db, org_a)
    _first, second, third = await new_methods(db, org_a, customer, 3)
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def switch_to_third() -> None:
        async with db.unit_of_work(org_a) as uow:
            started.set_result(await backend_pid(uow.session))
            await uow.customers.set_default(customer.id, third)
            await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        await uow.customers.set_default(customer.id, second)
        racer = asyncio.create_task(switch_to_third())
        await wait_until_blocked(db.engine, await started)
        await uow.commit()
    await racer
    assert await defaults(db, org_a, customer) == [third]


# -- specifications -----------------------------------------------------------------------


async def test_email_is_spec_ignores_case(db: Database, org_a: uuid.UUID) -> None:
    customer = await new_customer(db, org_a, "spec@example.com")
    async with db.unit_of_work(org_a) as uow:
        found = await uow.customers.list(CustomerSpecs.email_is(" SPEC@example.com"))
        assert [c.id for c in found] == [customer.id]


async def test_name_contains_matches_wildcards_literally(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.add_many(
            [
                Customer(email="a@example.com", name="Save 50% Ltd"),
                Customer(email="b@example.com", name="Save 500 Ltd"),
                Customer(email="c@example.com", name="snake_case Inc"),
                Customer(email="d@example.com", name="snakeXcase Inc"),
            ]
        )
        percent = await uow.customers.list(CustomerSpecs.name_contains("50%"))
        underscore = await uow.customers.list(CustomerSpecs.name_contains("E_C"))
        assert [c.name for c in percent] == ["Save 50% Ltd"]
        assert [c.name for c in underscore] == ["snake_case Inc"]


async def test_created_between_is_half_open(db: Database, org_a: uuid.UUID) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.add_many(
            [
                Customer(email=f"t{days}@example.com", created_at=start + timedelta(days=days))
                for days in (-1, 0, 1, 2)
            ]
        )
        spec = CustomerSpecs.created_between(start, start + timedelta(days=2))
        found = await uow.customers.list(spec, order_by=["created_at"])
        assert [c.email for c in found] == ["t0@example.com", "t1@example.com"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2030, 1, 1), datetime(2030, 1, 2)),
        (datetime(2030, 1, 2, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    ],
    ids=["naive", "reversed"],
)
def test_created_between_refuses_naive_or_reversed_bounds(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidData):
        CustomerSpecs.created_between(start, end)


async def test_has_payment_method_type_is_an_exists_that_composes(
    db: Database, org_a: uuid.UUID
) -> None:
    card_holder = await new_customer(db, org_a, "card@example.com")
    await new_customer(db, org_a, "none@example.com")
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.add_payment_method(card_holder.id, "card")
        await uow.customers.add_payment_method(card_holder.id, "card")
        cards = CustomerSpecs.has_payment_method_type("card")
        assert [c.id for c in await uow.customers.list(cards)] == [card_holder.id]
        assert await uow.customers.count(cards) == 1
        assert await uow.customers.count(~cards) == 1
        assert await uow.customers.exists(cards & CustomerSpecs.email_is("card@example.com"))
        assert not await uow.customers.exists(CustomerSpecs.has_payment_method_type("bank_account"))


async def test_has_payment_method_type_with_an_unknown_type_is_invalid() -> None:
    with pytest.raises(InvalidData):
        CustomerSpecs.has_payment_method_type("cash")


async def test_count_matches_rows_in_this_tenant_only(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await new_customer(db, org_b, "b-only@example.com")
    async with db.unit_of_work(org_a) as uow:
        total = (await uow.session.execute(select(func.count()).select_from(Customer))).scalar_one()
        assert await uow.customers.count(CustomerSpecs.email_is("b-only@example.com")) == 0
        assert total == 0
