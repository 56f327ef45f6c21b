"""Prepared specifications: built once with named parameters, bound per call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import bindparam

from repositories.models import Customer
from tenancy import ConfigurationError, Database
from tenancy.pagination import KeysetPage
from tenancy.specification import Specification

NAMED = Specification[Customer](Customer.name.like(bindparam("pattern")))
NAMED_WITH_MINIMUM = Specification[Customer](
    Customer.name.like(bindparam("pattern")) & (Customer.email >= bindparam("from_email"))
)


@dataclass(frozen=True)
class NameRow:
    """The read path's row: one column."""

    name: str


async def add_named(db: Database, org_id: uuid.UUID, *names: str) -> None:
    async with db.unit_of_work(org_id) as uow:
        for name in names:
            await uow.customers.add(
                Customer(
                    email=f"{name.replace(' ', '')}-{uuid.uuid4().hex[:6]}@x.example", name=name
                )
            )
        await uow.commit()


async def names_listed(db: Database, org_id: uuid.UUID, spec: Specification[Customer]) -> set[str]:
    async with db.unit_of_work(org_id) as uow:
        return {c.name for c in await uow.customers.list(spec)}


async def test_a_bound_specification_lists_the_rows_its_values_match(
    db: Database, org_a: uuid.UUID
) -> None:
    await add_named(db, org_a, "Acme 1", "Acme 2", "Beta 1")

    assert await names_listed(db, org_a, NAMED.bind(pattern="Acme%")) == {"Acme 1", "Acme 2"}


async def test_each_bind_runs_with_its_own_values(db: Database, org_a: uuid.UUID) -> None:
    await add_named(db, org_a, "Acme 1", "Beta 1", "Beta 2")

    assert await names_listed(db, org_a, NAMED.bind(pattern="Acme%")) == {"Acme 1"}
    assert await names_listed(db, org_a, NAMED.bind(pattern="Beta%")) == {"Beta 1", "Beta 2"}
    assert await names_listed(db, org_a, NAMED.bind(pattern="Acme%")) == {"Acme 1"}


async def test_the_read_path_pages_a_bound_specification(db: Database, org_a: uuid.UUID) -> None:
    await add_named(db, org_a, *(f"Acme {i}" for i in range(5)), "Beta 1")
    seen: list[str] = []
    cursor: str | None = None
    async with db.unit_of_work(org_a) as uow:
        while True:
            page = KeysetPage(limit=2, after=cursor)
            result = await uow.customers.read(NameRow, NAMED.bind(pattern="Acme%"), page=page)
            seen.extend(row.name for row in result.items)
            if (cursor := result.next_cursor) is None:
                break

    assert sorted(seen) == [f"Acme {i}" for i in range(5)]


async def test_count_and_exists_apply_the_bound_values(db: Database, org_a: uuid.UUID) -> None:
    await add_named(db, org_a, "Acme 1", "Acme 2", "Beta 1")
    async with db.unit_of_work(org_a) as uow:
        assert await uow.customers.count(NAMED.bind(pattern="Acme%")) == 2
        assert await uow.customers.exists(NAMED.bind(pattern="Beta%"))
        assert not await uow.customers.exists(NAMED.bind(pattern="Gamma%"))


async def test_a_bound_specification_composes_with_others(db: Database, org_a: uuid.UUID) -> None:
    await add_named(db, org_a, "Acme 1", "Acme 2", "Beta 1")
    spec = NAMED.bind(pattern="Acme%") & ~Specification[Customer](Customer.name == "Acme 2")

    assert await names_listed(db, org_a, spec) == {"Acme 1"}


async def test_binding_in_steps_keeps_earlier_values(db: Database, org_a: uuid.UUID) -> None:
    await add_named(db, org_a, "Acme 1", "Acme 2")
    spec = NAMED_WITH_MINIMUM.bind(pattern="Acme%").bind(from_email="acme2")

    assert await names_listed(db, org_a, spec) == {"Acme 2"}


async def test_a_bound_specification_sees_only_the_tenant_rows(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await add_named(db, org_a, "Acme A")
    await add_named(db, org_b, "Acme B")

    assert await names_listed(db, org_a, NAMED.bind(pattern="Acme%")) == {"Acme A"}
    assert await names_listed(db, org_b, NAMED.bind(pattern="Acme%")) == {"Acme B"}


def test_binding_shares_the_expression_so_its_cache_key_is_computed_once() -> None:
    first, second = NAMED.bind(pattern="a%"), NAMED.bind(pattern="b%")

    assert first.expression is second.expression is NAMED.expression
    assert dict(first.parameters) == {"pattern": "a%"}
    assert dict(second.parameters) == {"pattern": "b%"}


def test_binding_leaves_the_prepared_specification_unbound() -> None:
    NAMED.bind(pattern="a%")

    assert dict(NAMED.parameters) == {}


def test_binding_an_unknown_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'patern'"):
        NAMED.bind(patern="a%")


async def test_listing_with_a_parameter_left_unbound_is_refused_before_any_sql(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ConfigurationError, match="'pattern' has no value"):
            await uow.customers.list(NAMED)
        # Nothing was sent: the transaction was never opened.
        assert not uow._checkout.is_open()
