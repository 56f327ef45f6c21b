"""Prices: adjustments replace the active price atomically, history, events, concurrency."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from repositories.domain_events import PriceChanged
from repositories.models import Price, Product
from tenancy import Conflict, Database, InvalidData, NotFound
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    random_id,
    wait_until_blocked,
)


async def add_product(db: Database, org_id: uuid.UUID) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        product = await uow.products.add(Product(name="Plan", sku=uuid.uuid4().hex[:12]))
        await uow.commit()
    return product.id


async def change(db: Database, org_id: uuid.UUID, product_id: uuid.UUID, amount: int) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        price = await uow.prices.change_price(product_id, "USD", amount)
        await uow.commit()
    return price.id


# -- adjustments ----------------------------------------------------------------


async def test_first_price_is_active(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    price_id = await change(db, org_a, product_id, 1000)

    async with db.unit_of_work(org_a) as uow:
        active = await uow.prices.get_active_price(product_id, "USD")
        assert (active.id, active.unit_amount, active.deactivated_at) == (price_id, 1000, None)


async def test_adjustment_deactivates_the_previous_price(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    old_id = await change(db, org_a, product_id, 1000)
    await change(db, org_a, product_id, 1200)

    async with db.unit_of_work(org_a) as uow:
        old = await uow.prices.get(old_id)
        assert old.active is False
        assert old.deactivated_at is not None


async def test_adjustment_makes_the_new_amount_active(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    await change(db, org_a, product_id, 1000)
    new_id = await change(db, org_a, product_id, 1200)

    async with db.unit_of_work(org_a) as uow:
        active = await uow.prices.get_active_price(product_id, "USD")
        assert (active.id, active.unit_amount) == (new_id, 1200)


async def test_two_adjustments_in_one_unit_of_work_leave_one_active(
    db: Database, org_a: uuid.UUID
) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        await uow.prices.change_price(product_id, "USD", 1000)
        await uow.prices.change_price(product_id, "USD", 1100)
        await uow.prices.change_price(product_id, "USD", 1200)
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        history = await uow.prices.history(product_id)
        assert [p.active for p in history] == [False, False, True]


async def test_currencies_have_independent_active_prices(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        await uow.prices.change_price(product_id, "USD", 1000)
        await uow.prices.change_price(product_id, "EUR", 900)
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        active = await uow.prices.active_prices(product_id)
        assert [(p.currency, p.unit_amount) for p in active] == [("EUR", 900), ("USD", 1000)]


async def test_currency_is_normalised_to_upper_case(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        price = await uow.prices.change_price(product_id, " gbp ", 500)
        assert price.currency == "GBP"


async def test_malformed_currency_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.prices.change_price(product_id, "DOLLARS", 500)


async def test_negative_amount_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.prices.change_price(product_id, "USD", -1)


async def test_failed_adjustment_keeps_the_previous_price_active(
    db: Database, org_a: uuid.UUID
) -> None:
    product_id = await add_product(db, org_a)
    old_id = await change(db, org_a, product_id, 1000)

    with pytest.raises(InvalidData):
        await change(db, org_a, product_id, -5)

    async with db.unit_of_work(org_a) as uow:
        assert (await uow.prices.get_active_price(product_id, "USD")).id == old_id


async def test_adjusting_an_unknown_product_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.prices.change_price(random_id(), "USD", 100)


async def test_adjusting_another_tenants_product_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await add_product(db, org_b)
    await change(db, org_b, theirs, 1000)

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.prices.change_price(theirs, "USD", 1)
    async with db.unit_of_work(org_b) as uow:
        assert (await uow.prices.get_active_price(theirs, "USD")).unit_amount == 1000


async def test_database_refuses_a_second_active_price(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    await change(db, org_a, product_id, 1000)

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(Conflict) as raised:
            await uow.prices.add(Price(product_id=product_id, currency="USD", unit_amount=5))

    assert raised.value.constraint == "uq_prices_one_active"


# -- reads ------------------------------------------------------------------------


async def test_history_lists_every_price_oldest_first(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    for amount in (1000, 1100, 1200):
        await change(db, org_a, product_id, amount)

    async with db.unit_of_work(org_a) as uow:
        history = await uow.prices.history(product_id)
        assert [p.unit_amount for p in history] == [1000, 1100, 1200]


async def test_history_can_be_limited_to_one_currency(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        await uow.prices.change_price(product_id, "USD", 1000)
        await uow.prices.change_price(product_id, "EUR", 900)
        await uow.prices.change_price(product_id, "EUR", 950)
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        history = await uow.prices.history(product_id, "eur")
        assert [p.unit_amount for p in history] == [900, 950]


async def test_active_price_in_a_currency_without_one_is_none(
    db: Database, org_a: uuid.UUID
) -> None:
    product_id = await add_product(db, org_a)
    await change(db, org_a, product_id, 1000)

    async with db.unit_of_work(org_a) as uow:
        assert await uow.prices.active_price(product_id, "JPY") is None


async def test_get_active_price_without_one_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.prices.get_active_price(product_id, "USD")


async def test_another_tenants_history_is_empty(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await add_product(db, org_b)
    await change(db, org_b, theirs, 1000)

    async with db.unit_of_work(org_a) as uow:
        assert await uow.prices.history(theirs) == []


# -- events -----------------------------------------------------------------------


async def test_adjustment_raises_price_changed_naming_the_previous_price(
    db: Database,
    org_a: uuid.UUID,
    payment_events_db: Database,
    payment_events: RecordingDispatcher,
) -> None:
    product_id = await add_product(db, org_a)
    old_id = await change(payment_events_db, org_a, product_id, 1000)
    new_id = await change(payment_events_db, org_a, product_id, 1500)

    changed = payment_events.of_type(PriceChanged)
    assert [(e.aggregate_id, e.price_id, e.previous_price_id, e.unit_amount) for e in changed] == [
        (str(product_id), old_id, None, 1000),
        (str(product_id), new_id, old_id, 1500),
    ]


async def test_rolled_back_adjustment_raises_no_event(
    db: Database,
    org_a: uuid.UUID,
    payment_events_db: Database,
    payment_events: RecordingDispatcher,
) -> None:
    product_id = await add_product(db, org_a)
    async with payment_events_db.unit_of_work(org_a) as uow:
        await uow.prices.change_price(product_id, "USD", 1000)

    assert payment_events.events == []


# -- concurrency ------------------------------------------------------------------


async def test_concurrent_adjustments_serialize(db: Database, org_a: uuid.UUID) -> None:
    product_id = await add_product(db, org_a)
    initial_id = await change(db, org_a, product_id, 1000)

    async with db.unit_of_work(org_a) as first, db.unit_of_work(org_a) as second:
        first_price = await first.prices.change_price(product_id, "USD", 2000)
        pid = await backend_pid(second.session)
        waiting = asyncio.create_task(second.prices.change_price(product_id, "USD", 3000))
        await wait_until_blocked(db.engine, pid)
        await first.commit()
        second_price = await waiting
        await second.commit()

    async with db.unit_of_work(org_a) as uow:
        history = await uow.prices.history(product_id)
        assert [(p.id, p.active) for p in history] == [
            (initial_id, False),
            (first_price.id, False),
            (second_price.id, True),
        ]
