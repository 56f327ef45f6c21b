"""The fast paths (get, list, add) hand out instances the ORM itself would have made.

Per model: the identity key, the loaded values, the committed state (no history,
nothing expired), the persistence flags and what is left unloaded (deferred
columns, relationships) equal those of an instance from ``session.get()`` or
``select()`` in a plain ORM session.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import inspect, select

from repositories.models import Customer, Organization, Product
from repositories.row_mapper import row_mapper
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy import Database


def snapshot(obj: Any) -> dict[str, Any]:
    """Everything of an instance's ORM state a caller can observe without I/O."""
    state = inspect(obj)
    columns = {c.key for c in state.mapper.column_attrs}
    return {
        "key": state.key,
        "persistent": state.persistent,
        "modified": state.modified,
        "committed": dict(state.committed_state),
        "expired": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
        "values": {k: v for k, v in obj.__dict__.items() if k in columns},
    }


async def orm_snapshot(
    db: Database, org_id: uuid.UUID, model: type[Any], id_: Any
) -> dict[str, Any]:
    """The snapshot of ``session.get(model, id_)`` in a plain ORM session."""
    async with db.session(org_id) as session:
        found = await session.get(model, id_)
        assert found is not None
        return snapshot(found)


async def orm_list_snapshots(
    db: Database, org_id: uuid.UUID, model: type[Any]
) -> list[dict[str, Any]]:
    """The snapshots of ``select(model)`` in a plain ORM session, by id."""
    async with db.session(org_id) as session:
        found = (await session.execute(select(model).order_by(model.id))).scalars().all()
        return [snapshot(obj) for obj in found]


async def add_customer(uow: PlatformUnitOfWork) -> Customer:
    return await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@example.com"))


async def add_product(uow: PlatformUnitOfWork) -> Product:
    return await uow.products.add(Product(name="Widget"))


ADDERS: dict[type[Any], Callable[[PlatformUnitOfWork], Awaitable[Any]]] = {
    Customer: add_customer,
    Product: add_product,
}


def repository(uow: PlatformUnitOfWork, model: type[Any]) -> Any:
    return {Customer: uow.customers, Product: uow.products}[model]


@pytest.mark.parametrize("model", [Customer, Product])
async def test_an_added_instance_equals_the_one_the_orm_loads(
    db: Database, org_a: uuid.UUID, model: type[Any]
) -> None:
    async with db.unit_of_work(org_a) as uow:
        added = await ADDERS[model](uow)
        fast = snapshot(added)
        await uow.commit()
    assert fast == await orm_snapshot(db, org_a, model, inspect(added).identity)


@pytest.mark.parametrize("model", [Customer, Product])
async def test_a_got_instance_equals_the_one_session_get_loads(
    db: Database, org_a: uuid.UUID, model: type[Any]
) -> None:
    async with db.unit_of_work(org_a) as uow:
        added = await ADDERS[model](uow)
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        fast = snapshot(await repository(uow, model).get(added.id))
    assert fast == await orm_snapshot(db, org_a, model, inspect(added).identity)


@pytest.mark.parametrize("model", [Customer, Product])
async def test_listed_instances_equal_the_ones_select_loads(
    db: Database, org_a: uuid.UUID, model: type[Any]
) -> None:
    async with db.unit_of_work(org_a) as uow:
        for _ in range(3):
            await ADDERS[model](uow)
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        listed = await repository(uow, model).list(order_by=["id"])
        fast = [snapshot(obj) for obj in listed]
    assert fast == await orm_list_snapshots(db, org_a, model)


async def test_the_tenant_root_got_equals_the_one_session_get_loads(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        fast = snapshot(await uow.organizations.get(org_a))
    assert fast == await orm_snapshot(db, org_a, Organization, (org_a,))


def test_the_tenant_column_follows_the_declared_tenant_tables() -> None:
    # One definition (tenancy.schema.declarative): tenant-owned rows by org_id,
    # the tenants' own table by its id.
    assert row_mapper(Customer).tenant_column is Customer.__table__.c.org_id
    assert row_mapper(Organization).tenant_column is Organization.__table__.c.id


async def test_repositories_compile_with_the_engine_dialect(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        assert uow.dialect is db.engine.dialect
        customer = await add_customer(uow)
        mapper = row_mapper(Customer, uow.dialect)
        # The mapper the repository used is the engine's (cached per dialect).
        assert mapper.insert_values(Customer(email="x@example.com"))[0].sql.startswith(
            "INSERT INTO customers"
        )
        assert inspect(customer).persistent
