"""List statements cached per shape: same rows as Core, current values, Core for the rest."""

from __future__ import annotations

import uuid

from repositories.list_statement import ListShape, list_sql
from repositories.models import Customer
from repositories.row_mapper import row_mapper
from tenancy import Database
from tenancy.pagination import KeysetPage
from tenancy.specification import Specification

MAPPER = row_mapper(Customer)
SHAPE = ListShape(
    (),  # sort keys do not matter for what these tests check
    has_after=False,
    has_limit=True,
    has_offset=False,
)


def _named(pattern: str) -> Specification[Customer]:
    return Specification[Customer](Customer.name.like(pattern))


async def _add(db: Database, org_id: uuid.UUID, *names: str) -> None:
    async with db.unit_of_work(org_id) as uow:
        for i, name in enumerate(names):
            await uow.customers.add(Customer(email=f"{name.lower()}{i}@example.com", name=name))
        await uow.commit()


def test_a_filter_with_literals_compiles_once_and_takes_each_calls_values() -> None:
    tenant = uuid.uuid4()
    first = list_sql(MAPPER, _named("Ann%").to_clause(), SHAPE, tenant=tenant, limit=5)
    second = list_sql(MAPPER, _named("Bob%").to_clause(), SHAPE, tenant=tenant, limit=7)
    assert first is not None
    assert second is not None
    assert first[0] == second[0]
    assert first[1] == ["Ann%", tenant, 5]
    assert second[1] == ["Bob%", tenant, 7]


def test_an_in_list_filter_is_left_to_core() -> None:
    clause = Customer.email.in_(["a@example.com", "b@example.com"])
    assert list_sql(MAPPER, clause, SHAPE, tenant=uuid.uuid4(), limit=5) is None


async def test_a_reused_shape_lists_the_rows_of_the_new_values(
    db: Database, org_a: uuid.UUID
) -> None:
    await _add(db, org_a, "Ann", "Bob")
    async with db.unit_of_work(org_a) as uow:
        anns = await uow.customers.list(_named("Ann%"), page=KeysetPage(limit=10))
        bobs = await uow.customers.list(_named("Bob%"), page=KeysetPage(limit=10))
    assert [c.name for c in anns.items] == ["Ann"]
    assert [c.name for c in bobs.items] == ["Bob"]


async def test_cached_text_and_core_list_the_same_rows(db: Database, org_a: uuid.UUID) -> None:
    await _add(db, org_a, "Ann", "Bob", "Cid")
    emails = ["ann0@example.com", "cid2@example.com"]
    either = Specification[Customer](Customer.email == emails[0]) | Specification[Customer](
        Customer.email == emails[1]
    )
    async with db.unit_of_work(org_a) as uow:
        cached = await uow.customers.list(either)
        core = await uow.customers.list(Specification[Customer](Customer.email.in_(emails)))
    assert [c.id for c in cached] == [c.id for c in core]
    assert sorted(c.email for c in core) == emails
