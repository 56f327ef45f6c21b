"""A specification's own bind parameters keep their values on the fast list path.

The cached list statements add parameters of their own (tenant, cursor, limit,
offset). They are told apart from a filter's by identity, never by name, so a
filter that happens to use ``bindparam("tenancy_tenant")`` or
``bindparam("tenancy_limit")`` gets its own value, on the cached path and on
the Core path alike.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam

from repositories.list_statement import ListShape, list_sql
from repositories.models import Customer
from repositories.row_mapper import row_mapper
from tenancy import Database
from tenancy.pagination import KeysetPage
from tenancy.specification import Specification

pytestmark = pytest.mark.security

OWN_NAMES = ["tenancy_tenant", "tenancy_limit", "tenancy_offset", "tenancy_after_0"]


async def _add(db: Database, org_id: uuid.UUID, *names: str) -> None:
    async with db.unit_of_work(org_id) as uow:
        for name in names:
            await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@bind.example", name=name))
        await uow.commit()


def _named(parameter: str, value: str) -> Specification[Customer]:
    return Specification[Customer](Customer.name == bindparam(parameter, value))


@pytest.mark.parametrize("parameter", OWN_NAMES)
def test_cached_statement_takes_the_filters_value_for_a_colliding_name(parameter: str) -> None:
    shape = ListShape((), has_after=False, has_limit=True, has_offset=True)
    tenant = uuid.uuid4()

    planned = list_sql(
        row_mapper(Customer),
        _named(parameter, "Ann").to_clause(),
        shape,
        tenant=tenant,
        limit=5,
        offset=0,
    )

    assert planned is not None
    assert planned[1] == ["Ann", tenant, 5, 0]


@pytest.mark.parametrize("parameter", OWN_NAMES)
async def test_list_with_a_colliding_bind_name_returns_the_matching_rows(
    db: Database, org_a: uuid.UUID, parameter: str
) -> None:
    await _add(db, org_a, "Ann", "Bob")

    async with db.unit_of_work(org_a) as uow:
        page = await uow.customers.list(_named(parameter, "Ann"), page=KeysetPage(limit=10))
        listed = await uow.customers.list(_named(parameter, "Ann"))

    assert [c.name for c in page.items] == ["Ann"]
    assert [c.name for c in listed] == ["Ann"]


async def test_core_path_with_a_colliding_bind_name_returns_the_matching_rows(
    db: Database, org_a: uuid.UUID
) -> None:
    await _add(db, org_a, "Ann", "Bob")
    spec = _named("tenancy_tenant", "Ann") & Specification[Customer](
        Customer.name.in_(["Ann", "Bob"])  # an IN list sends the call through Core
    )

    async with db.unit_of_work(org_a) as uow:
        listed = await uow.customers.list(spec)

    assert [c.name for c in listed] == ["Ann"]
