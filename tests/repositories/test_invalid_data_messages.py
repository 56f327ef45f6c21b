"""Refusals stay readable: long value lists and long values are cut in the message."""

from __future__ import annotations

import uuid

import pytest

from repositories.payment_link_specs import PaymentLinkSpecs
from repositories.payment_order_specs import PaymentOrderSpecs
from tenancy import Database, InvalidData


def test_unknown_statuses_are_listed_five_and_counted() -> None:
    statuses = [f"bogus-{i}" for i in range(10_000)]
    with pytest.raises(InvalidData) as refused:
        PaymentOrderSpecs.status_in(*statuses)
    message = str(refused.value)
    assert "'bogus-4'] and 9995 more" in message
    assert "bogus-5'" not in message
    assert len(message) < 300


def test_a_few_unknown_statuses_are_all_listed() -> None:
    with pytest.raises(InvalidData) as refused:
        PaymentLinkSpecs.status_in("active", "lost", "gone")
    assert "['lost', 'gone'];" in str(refused.value)


async def test_a_long_unknown_value_is_cut(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData) as refused:
            await uow.users.members(role="x" * 100_000)
    assert len(str(refused.value)) < 100


def test_a_long_non_int_amount_is_cut() -> None:
    with pytest.raises(InvalidData) as refused:
        PaymentOrderSpecs.amount_between("9" * 100_000, 1)  # type: ignore[arg-type]
    assert len(str(refused.value)) < 120
