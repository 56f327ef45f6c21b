"""Currency codes are active ISO 4217 codes in ASCII upper case; nothing else is stored."""

from __future__ import annotations

import uuid

import pytest

from repositories.currency import ACTIVE_CURRENCY_CODES
from repositories.payment_order_specs import PaymentOrderSpecs
from tenancy import Database, InvalidData
from tests.repositories.payments_support import new_customer, new_price

#: Spellings that ``str.upper`` would turn into three letters ('ßd' became 'SSD'):
#: sharp s, Turkish dotless i ('\u0131nr' upper-cases to 'INR'), full-width, d with stroke,
#: and a combining accent.
NON_ASCII = ["\u00dfd", "\u0131nr", "\uff35\uff33\uff24", "us\u0111", "eur\u0301"]


async def order_count(db: Database, org_id: uuid.UUID) -> int:
    async with db.unit_of_work(org_id) as uow:
        return await uow.payment_orders.count()


@pytest.mark.parametrize("currency", NON_ASCII)
async def test_create_refuses_a_currency_with_non_ascii_letters(
    db: Database, org_a: uuid.UUID, currency: str
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await new_customer(uow)
        with pytest.raises(InvalidData, match="three ASCII letters"):
            await uow.payment_orders.create(customer.id, 100, currency)


async def test_refused_currency_leaves_the_order_count_unchanged(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await new_customer(uow)
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(customer.id, 100, "ßd")
        await uow.commit()
    assert await order_count(db, org_a) == 0


@pytest.mark.parametrize("currency", ["ABC", "ZZZ", "US", "USDT", "", "U5D", 840])
async def test_create_refuses_what_is_not_an_active_code(
    db: Database, org_a: uuid.UUID, currency: object
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await new_customer(uow)
        with pytest.raises(InvalidData, match="currency"):
            await uow.payment_orders.create(customer.id, 100, currency)  # type: ignore[arg-type]


async def test_lower_case_ascii_currency_is_stored_upper_case(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await new_customer(uow)
        order = await uow.payment_orders.create(customer.id, 100, " eur ")
        await uow.commit()
    assert order.currency == "EUR"


async def test_change_price_refuses_a_non_ascii_currency(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow)
        with pytest.raises(InvalidData, match="three ASCII letters"):
            await uow.prices.change_price(price.product_id, "ßd", 100)


async def test_active_price_lookup_refuses_an_unknown_code(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price = await new_price(uow)
        with pytest.raises(InvalidData, match="not an active ISO 4217 code"):
            await uow.prices.active_price(price.product_id, "XYZ")


def test_currency_filter_refuses_a_non_ascii_code() -> None:
    with pytest.raises(InvalidData):
        PaymentOrderSpecs.currency_is("ßd")


def test_active_codes_include_the_common_currencies() -> None:
    common = {"USD", "EUR", "GBP", "JPY", "CHF", "CNY", "CAD", "AUD", "INR", "BRL", "MXN", "SEK"}
    assert common <= ACTIVE_CURRENCY_CODES


def test_active_codes_are_three_ascii_capitals() -> None:
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in ACTIVE_CURRENCY_CODES)


def test_withdrawn_codes_are_not_active() -> None:
    assert not {"DEM", "FRF", "HRK", "VEF", "ZWL", "MRO", "STD"} & ACTIVE_CURRENCY_CODES
