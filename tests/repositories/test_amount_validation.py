"""Amounts are ints of minor units: anything else is refused before any SQL runs."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import IntEnum

import pytest

from repositories.domain_events import PaymentOrderCreated, PriceChanged
from repositories.models import PaymentOrder, Price
from repositories.payment_order_specs import PaymentOrderSpecs
from tenancy import Database, InvalidData
from tests.repositories.payments_support import RecordingDispatcher, new_customer, new_price

#: What the database used to round or coerce: 1.5 -> 2, Decimal('2.5') -> 2, True -> 1.
NOT_INTS = [1.5, 2.0, Decimal("2.5"), Decimal("2"), True, "100", b"1", None]


class Cents(IntEnum):
    """An int subclass a caller may reasonably pass."""

    TEN_DOLLARS = 1000


async def customer_in(db: Database, org_id: uuid.UUID) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        customer = await new_customer(uow)
        await uow.commit()
    return customer.id


async def order_count(db: Database, org_id: uuid.UUID) -> int:
    async with db.unit_of_work(org_id) as uow:
        return await uow.payment_orders.count()


@pytest.mark.parametrize("amount", NOT_INTS, ids=repr)
async def test_create_refuses_an_amount_that_is_not_an_int(
    db: Database, org_a: uuid.UUID, amount: object
) -> None:
    customer_id = await customer_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match=r"^amount must be an int"):
            await uow.payment_orders.create(customer_id, amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [1.5, Decimal("2.5"), True], ids=repr)
async def test_refused_create_leaves_the_order_count_unchanged(
    db: Database, org_a: uuid.UUID, amount: object
) -> None:
    customer_id = await customer_in(db, org_a)
    before = await order_count(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(customer_id, amount, "USD")  # type: ignore[arg-type]
        await uow.commit()
    assert (before, await order_count(db, org_a)) == (0, 0)


async def test_refused_create_leaves_the_transaction_usable(db: Database, org_a: uuid.UUID) -> None:
    # Had the bad value reached Postgres, the transaction would be aborted and the
    # next statement refused: the refusal happened before any SQL.
    customer_id = await customer_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(customer_id, Decimal("2.5"), "USD")  # type: ignore[arg-type]
        await uow.payment_orders.create(customer_id, 250, "USD")
        await uow.commit()
    assert await order_count(db, org_a) == 1


@pytest.mark.parametrize("amount", [0, -1])
async def test_create_refuses_an_amount_below_one(
    db: Database, org_a: uuid.UUID, amount: int
) -> None:
    customer_id = await customer_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="amount must be at least 1"):
            await uow.payment_orders.create(customer_id, amount, "USD")


async def test_create_refuses_an_amount_beyond_bigint(db: Database, org_a: uuid.UUID) -> None:
    customer_id = await customer_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="amount must be at most"):
            await uow.payment_orders.create(customer_id, 2**63, "USD")


async def test_add_refuses_an_order_built_with_a_fractional_amount(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await customer_in(db, org_a)
    order = PaymentOrder(customer_id=customer_id, amount=Decimal("2.5"), currency="USD")
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match=r"^amount must be an int"):
            await uow.payment_orders.add(order)
        await uow.commit()
    assert await order_count(db, org_a) == 0


async def test_add_many_inserts_nothing_when_one_amount_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = await customer_in(db, org_a)
    orders = [
        PaymentOrder(customer_id=customer_id, amount=100, currency="USD"),
        PaymentOrder(customer_id=customer_id, amount=True, currency="USD"),
    ]
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.add_many(orders)
        await uow.commit()
    assert await order_count(db, org_a) == 0


async def test_update_refuses_a_float_amount(db: Database, org_a: uuid.UUID) -> None:
    customer_id = await customer_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        order = await uow.payment_orders.create(customer_id, 100, "USD")
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match=r"^amount must be an int"):
            await uow.payment_orders.update(order.id, {"amount": 1.5})
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.payment_orders.get(order.id)).amount == 100


async def test_int_subclass_amount_is_stored_and_published_as_a_plain_int(
    payment_events_db: Database, payment_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    customer_id = await customer_in(payment_events_db, org_a)
    async with payment_events_db.unit_of_work(org_a) as uow:
        order = await uow.payment_orders.create(customer_id, Cents.TEN_DOLLARS, "USD")
        await uow.commit()
    (created,) = payment_events.of_type(PaymentOrderCreated)
    assert type(order.amount) is int
    assert (type(created.amount), created.amount) == (int, 1000)


@pytest.mark.parametrize("unit_amount", [9.99, Decimal("9.99"), False], ids=repr)
async def test_change_price_refuses_a_unit_amount_that_is_not_an_int(
    db: Database, org_a: uuid.UUID, unit_amount: object
) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow, "USD", 1000)
        with pytest.raises(InvalidData, match=r"^unit_amount must be an int"):
            await uow.prices.change_price(price.product_id, "USD", unit_amount)  # type: ignore[arg-type]
        assert (await uow.prices.get_active_price(price.product_id, "USD")).unit_amount == 1000


async def test_change_price_accepts_zero(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow, "USD", 1000)
        assert (await uow.prices.change_price(price.product_id, "USD", 0)).unit_amount == 0


async def test_change_price_publishes_the_checked_amount(
    payment_events_db: Database, payment_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    async with payment_events_db.unit_of_work(org_a) as uow:
        await new_price(uow, "usd", Cents.TEN_DOLLARS)
        await uow.commit()
    (changed,) = payment_events.of_type(PriceChanged)
    assert (type(changed.unit_amount), changed.unit_amount, changed.currency) == (int, 1000, "USD")


async def test_price_add_refuses_a_negative_unit_amount(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow)
        before = await uow.prices.count()
        with pytest.raises(InvalidData, match="unit_amount must be at least 0"):
            await uow.prices.add(Price(product_id=price.product_id, currency="EUR", unit_amount=-1))
        assert await uow.prices.count() == before


def test_amount_range_refuses_a_float_bound() -> None:
    with pytest.raises(InvalidData, match=r"^low must be an int"):
        PaymentOrderSpecs.amount_between(0.5, 10)  # type: ignore[arg-type]


async def test_payment_link_refuses_a_bool_max_uses(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow)
        with pytest.raises(InvalidData, match=r"^max_uses must be an int"):
            await uow.payment_links.create(price.id, max_uses=True)
