"""The fast paths keep the ORM's defaults, listeners and engine options, or step aside.

A service's own tables are made here (as the superuser, granted to the app
role), so that their defaults are exactly the ones under test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import DateTime, String, event, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from repositories.base import AsyncRepository
from repositories.models import Customer, Product
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.settings import APP_ROLE


class ServiceBase(DeclarativeBase):
    """A service's own declarative base, with the repositories' event recording."""

    def record_event(self, event: object) -> None:
        self.__dict__.setdefault("_pending_events", []).append(event)

    def pull_events(self) -> list[object]:
        events: list[object] = self.__dict__.pop("_pending_events", [])
        return events


class Gadget(ServiceBase):
    """Server defaults without Python ones, on a plain (not tenant-owned) table."""

    __tablename__ = "fastpath_gadgets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(50))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Stamped(ServiceBase):
    """A SQL-expression default, which only the ORM's flush evaluates."""

    __tablename__ = "fastpath_stamped"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    stamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=func.now())


class GadgetRepository(AsyncRepository[Gadget, uuid.UUID]):
    model = Gadget


class StampedRepository(AsyncRepository[Stamped, uuid.UUID]):
    model = Stamped


@pytest.fixture(scope="module")
async def service_tables(admin_url: URL) -> AsyncIterator[None]:
    """Create the service tables of this module, readable and writable by the app role."""
    engine = create_async_engine(admin_url)
    async with engine.begin() as connection:
        await connection.run_sync(ServiceBase.metadata.create_all)
        for table in ServiceBase.metadata.tables:
            await connection.exec_driver_sql(f"GRANT SELECT, INSERT ON {table} TO {APP_ROLE}")
    yield
    async with engine.begin() as connection:
        await connection.run_sync(ServiceBase.metadata.drop_all)
    await engine.dispose()


async def test_add_leaves_a_server_default_to_the_server(
    db: Database, org_a: uuid.UUID, service_tables: None
) -> None:
    async with db.unit_of_work(org_a) as uow:
        gadget = await GadgetRepository(uow).add(Gadget(name="g"))
        await uow.commit()
    assert gadget.is_active is True
    assert gadget.created_at is not None


async def test_add_returns_server_defaults_loaded_with_no_history(
    db: Database, org_a: uuid.UUID, service_tables: None
) -> None:
    async with db.unit_of_work(org_a) as uow:
        gadget = await GadgetRepository(uow).add(Gadget(name="g"))
        state = inspect(gadget)
        assert state.persistent
        assert not state.modified
        assert not state.expired_attributes
    async with db.session(org_a) as session:
        stored = await session.get(Gadget, gadget.id)
    assert stored is None  # never committed


async def test_an_explicit_value_overrides_the_server_default(
    db: Database, org_a: uuid.UUID, service_tables: None
) -> None:
    async with db.unit_of_work(org_a) as uow:
        gadget = await GadgetRepository(uow).add(Gadget(name="g", is_active=False))
        await uow.commit()
    async with db.session(org_a) as session:
        stored = await session.get(Gadget, gadget.id)
        assert stored is not None
        assert stored.is_active is False


async def test_add_steps_aside_for_a_sql_expression_default(
    db: Database, org_a: uuid.UUID, service_tables: None
) -> None:
    async with db.unit_of_work(org_a) as uow:
        stamped = await StampedRepository(uow).add(Stamped())
        await uow.commit()
    async with db.session(org_a) as session:
        stored = await session.get(Stamped, stamped.id)
        assert stored is not None
        assert stored.stamp is not None


@pytest.fixture
def product_listeners() -> Iterator[list[str]]:
    """Record Product's before_insert, after_insert and load events while a test runs."""
    fired: list[str] = []
    listeners: list[tuple[str, Any]] = [
        ("before_insert", lambda mapper, connection, target: fired.append("before_insert")),
        ("after_insert", lambda mapper, connection, target: fired.append("after_insert")),
        ("load", lambda target, context: fired.append("load")),
    ]
    for name, listener in listeners:
        event.listen(Product, name, listener)
    try:
        yield fired
    finally:
        for name, listener in listeners:
            event.remove(Product, name, listener)


async def test_add_fires_insert_listeners(
    db: Database, org_a: uuid.UUID, product_listeners: list[str]
) -> None:
    async with db.unit_of_work(org_a) as uow:
        product = await uow.products.add(Product(name="Listened"))
        await uow.commit()
    assert product_listeners == ["before_insert", "after_insert"]
    assert product.name == "Listened"


async def test_get_and_list_fire_load_listeners(
    db: Database, org_a: uuid.UUID, product_listeners: list[str]
) -> None:
    async with db.unit_of_work(org_a) as uow:
        product = await uow.products.add(Product(name="Loaded"))
        await uow.commit()
    product_listeners.clear()
    async with db.unit_of_work(org_a) as uow:
        got = await uow.products.get(product.id)
    async with db.unit_of_work(org_a) as uow:
        listed = await uow.products.list()
    assert got.name == "Loaded"
    assert [p.id for p in listed] == [product.id]
    assert product_listeners == ["load", "load"]


async def test_add_serialises_json_with_the_engine_serializer(
    settings: TenancySettings, db: Database, org_a: uuid.UUID
) -> None:
    engine = create_engine(settings)
    # The engine option json_serializer, set on this engine only (the factory
    # takes no such argument): the fast path must compile with this dialect.
    engine.dialect._json_serializer = lambda value: json.dumps({**value, "by": "engine"})
    try:
        async with PlatformUnitOfWork(engine, org_a) as uow:
            customer = await uow.customers.add(
                Customer(email=f"{uuid.uuid4().hex}@example.com", attributes={"a": 1})
            )
            await uow.commit()
    finally:
        await engine.dispose()
    async with db.session(org_a) as session:
        stored = (
            await session.execute(select(Customer.attributes).where(Customer.id == customer.id))
        ).scalar_one()
    assert stored == {"a": 1, "by": "engine"}
