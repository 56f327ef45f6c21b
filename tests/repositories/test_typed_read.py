"""``read``: typed, immutable rows through the same specifications, pages and tenant transaction."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from repositories.models import Customer
from tenancy import ConfigurationError, Database
from tenancy.pagination import KeysetPage
from tenancy.specification import Specification


@dataclass(frozen=True)
class CustomerRow:
    """What an API response shows of a customer."""

    id: uuid.UUID
    email: str
    name: str
    attributes: dict[str, Any]


class CustomerOut(BaseModel):
    """The same, as a pydantic model."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    email: str
    name: str


@dataclass(frozen=True)
class KeywordRow:
    """Fields in another order than the model's columns, one of them keyword-only."""

    name: str
    email: str = field(kw_only=True)
    id: uuid.UUID


@dataclass(frozen=True)
class OneColumn:
    """A single field."""

    email: str


@dataclass(frozen=True)
class Shouted:
    """Derives a field in ``__post_init__``: built through its ``__init__``."""

    name: str
    shout: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shout", self.name.upper())


@dataclass(frozen=True, slots=True)
class SlottedRow:
    """No ``__dict__``: built through its ``__init__``."""

    id: uuid.UUID
    name: str


@dataclass
class Doubled:
    """Its own ``__init__`` (dataclasses keeps it): built through it."""

    name: str

    def __init__(self, name: str) -> None:
        self.name = name * 2


@dataclass(frozen=True)
class Misnamed:
    """Names an attribute customers do not have."""

    id: uuid.UUID
    nickname: str


async def add_customers(db: Database, org_id: uuid.UUID, count: int, prefix: str) -> None:
    async with db.unit_of_work(org_id) as uow:
        for i in range(count):
            await uow.customers.add(
                Customer(
                    email=f"{prefix}{i}-{uuid.uuid4().hex[:6]}@example.com",
                    name=f"{prefix} {i}",
                    attributes={"n": i},
                )
            )
        await uow.commit()


def named(prefix: str) -> Specification[Customer]:
    return Specification[Customer](Customer.name.like(f"{prefix}%"))


async def test_read_returns_the_values_list_loads(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 3, "Reader")
    async with db.unit_of_work(org_a) as uow:
        rows = await uow.customers.read(CustomerRow, named("Reader"), order_by=["name"])
        listed = await uow.customers.list(named("Reader"), order_by=["name"])
    assert rows == [CustomerRow(c.id, c.email, c.name, c.attributes) for c in listed]


async def test_read_fills_fields_by_name_whatever_their_order_or_kind(
    db: Database, org_a: uuid.UUID
) -> None:
    await add_customers(db, org_a, 2, "Ordered")
    async with db.unit_of_work(org_a) as uow:
        rows = await uow.customers.read(KeywordRow, named("Ordered"), order_by=["name"])
        single = await uow.customers.read(OneColumn, named("Ordered"), order_by=["name"])
        listed = await uow.customers.list(named("Ordered"), order_by=["name"])
    assert rows == [KeywordRow(c.name, c.id, email=c.email) for c in listed]
    assert single == [OneColumn(c.email) for c in listed]


async def test_read_rows_equal_hash_and_print_as_their_own_init_builds_them(
    db: Database, org_a: uuid.UUID
) -> None:
    await add_customers(db, org_a, 2, "Same")
    async with db.unit_of_work(org_a) as uow:
        rows = await uow.customers.read(CustomerRow, named("Same"), order_by=["name"])
    built = [CustomerRow(r.id, r.email, r.name, dict(r.attributes)) for r in rows]

    assert rows == built
    assert [repr(r) for r in rows] == [repr(b) for b in built]
    assert {hash((r.id, r.email)) for r in rows} == {hash((b.id, b.email)) for b in built}
    assert [vars(r) for r in rows] == [vars(b) for b in built]


async def test_read_runs_a_row_types_post_init(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 1, "Loud")
    async with db.unit_of_work(org_a) as uow:
        (row,) = await uow.customers.read(Shouted, named("Loud"))

    assert row.shout == "LOUD 0"


async def test_read_builds_slotted_dataclasses(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 1, "Slot")
    async with db.unit_of_work(org_a) as uow:
        (row,) = await uow.customers.read(SlottedRow, named("Slot"))

    assert row.name == "Slot 0"
    assert not hasattr(row, "__dict__")


async def test_read_keeps_a_row_types_own_init(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 1, "Twice")
    async with db.unit_of_work(org_a) as uow:
        (row,) = await uow.customers.read(Doubled, named("Twice"))

    assert row.name == "Twice 0Twice 0"


async def test_read_rows_are_immutable(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 1, "Frozen")
    async with db.unit_of_work(org_a) as uow:
        (row,) = await uow.customers.read(CustomerRow, named("Frozen"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "changed"  # type: ignore[misc]


async def test_read_builds_pydantic_models(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 2, "Pydantic")
    async with db.unit_of_work(org_a) as uow:
        rows = await uow.customers.read(CustomerOut, named("Pydantic"), order_by=["name"])
    assert [r.name for r in rows] == ["Pydantic 0", "Pydantic 1"]
    assert all(isinstance(r, CustomerOut) for r in rows)


async def test_read_pages_as_list_does(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 5, "Paged")
    async with db.unit_of_work(org_a) as uow:
        first = await uow.customers.read(CustomerRow, named("Paged"), page=KeysetPage(limit=2))
        listed = await uow.customers.list(named("Paged"), page=KeysetPage(limit=2))
        assert first.next_cursor == listed.next_cursor
        second = await uow.customers.read(
            CustomerRow, named("Paged"), page=KeysetPage(limit=2, after=first.next_cursor)
        )
        listed_second = await uow.customers.list(
            named("Paged"), page=KeysetPage(limit=2, after=listed.next_cursor)
        )
    assert [r.id for r in first.items] == [c.id for c in listed.items]
    assert [r.id for r in second.items] == [c.id for c in listed_second.items]


async def test_read_sees_only_the_tenant_rows(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await add_customers(db, org_a, 2, "Mine")
    await add_customers(db, org_b, 2, "Mine")
    async with db.unit_of_work(org_a) as uow:
        ids = {r.id for r in await uow.customers.read(CustomerRow, named("Mine"))}
        own = {c.id for c in await uow.customers.list(named("Mine"))}
    assert ids == own
    assert len(ids) == 2


async def test_read_builds_no_orm_instances(db: Database, org_a: uuid.UUID) -> None:
    await add_customers(db, org_a, 2, "Untracked")
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.read(CustomerRow, named("Untracked"))
        assert len(uow.session.identity_map) == 0


async def test_a_row_type_naming_an_unknown_attribute_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ConfigurationError, match="nickname"):
            await uow.customers.read(Misnamed)
