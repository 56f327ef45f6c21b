"""Products: CRUD, lookup by SKU, the SKU as natural key, tenant isolation."""

from __future__ import annotations

import uuid

import pytest

from repositories.models import Product
from tenancy import Conflict, Database, InvalidData, NotFound
from tests.repositories.payments_support import random_id


async def add_product(db: Database, org_id: uuid.UUID, sku: str, name: str = "Plan") -> Product:
    async with db.unit_of_work(org_id) as uow:
        product = await uow.products.add(Product(name=name, sku=sku))
        await uow.commit()
    return product


# -- create and read ----------------------------------------------------------


async def test_added_product_can_be_read_back(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-1", "Starter")

    async with db.unit_of_work(org_a) as uow:
        stored = await uow.products.get(product.id)
        assert (stored.name, stored.sku, stored.active) == ("Starter", "SKU-1", True)


async def test_find_by_sku_returns_the_product(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-2")

    async with db.unit_of_work(org_a) as uow:
        found = await uow.products.find_by_sku("SKU-2")
        assert found is not None
        assert found.id == product.id


async def test_find_by_unknown_sku_returns_none(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        assert await uow.products.find_by_sku("missing") is None


async def test_get_by_unknown_sku_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.products.get_by_sku("missing")


async def test_sku_is_matched_exactly(db: Database, org_a: uuid.UUID) -> None:
    await add_product(db, org_a, "Sku-Case")

    async with db.unit_of_work(org_a) as uow:
        assert await uow.products.find_by_sku("sku-case") is None


async def test_get_of_unknown_id_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.products.get(random_id())


async def test_list_sorts_by_a_whitelisted_key(db: Database, org_a: uuid.UUID) -> None:
    for name in ("b", "c", "a"):
        await add_product(db, org_a, f"SKU-{name}", name)

    async with db.unit_of_work(org_a) as uow:
        names = [p.name for p in await uow.products.list(order_by=["name"])]

    assert names == ["a", "b", "c"]


async def test_list_with_unknown_sort_key_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.products.list(order_by=["description; DROP TABLE products"])


# -- uniqueness ---------------------------------------------------------------


async def test_duplicate_sku_in_one_tenant_is_a_conflict(db: Database, org_a: uuid.UUID) -> None:
    await add_product(db, org_a, "SKU-DUP")

    with pytest.raises(Conflict) as raised:
        await add_product(db, org_a, "SKU-DUP")

    assert raised.value.constraint == "uq_products_org_id_sku"


async def test_two_tenants_may_use_the_same_sku(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    mine = await add_product(db, org_a, "SKU-SHARED")
    theirs = await add_product(db, org_b, "SKU-SHARED")

    assert mine.id != theirs.id


async def test_upsert_on_sku_updates_the_existing_product(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-UP", "Old")

    async with db.unit_of_work(org_a) as uow:
        upserted = await uow.products.upsert({"sku": "SKU-UP", "name": "New"}, update=["name"])
        await uow.commit()

    assert (upserted.id, upserted.name) == (product.id, "New")


# -- update and delete --------------------------------------------------------


async def test_update_changes_the_named_columns(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-U")

    async with db.unit_of_work(org_a) as uow:
        await uow.products.update(product.id, {"name": "Renamed", "active": False})
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        stored = await uow.products.get(product.id)
        assert (stored.name, stored.active) == ("Renamed", False)


async def test_update_of_the_tenant_column_is_refused(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-T")

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.products.update(product.id, {"org_id": uuid.uuid4()})


async def test_deleted_product_is_gone(db: Database, org_a: uuid.UUID) -> None:
    product = await add_product(db, org_a, "SKU-D")

    async with db.unit_of_work(org_a) as uow:
        await uow.products.delete(product.id)
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert await uow.products.get_or_none(product.id) is None


# -- isolation ----------------------------------------------------------------


async def test_another_tenants_product_is_not_found_by_id(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await add_product(db, org_b, "SKU-B")

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.products.get(theirs.id)


async def test_another_tenants_product_is_not_found_by_sku(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await add_product(db, org_b, "SKU-ONLY-B")

    async with db.unit_of_work(org_a) as uow:
        assert await uow.products.find_by_sku("SKU-ONLY-B") is None


async def test_another_tenants_product_cannot_be_deleted(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await add_product(db, org_b, "SKU-KEEP")

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.products.delete(theirs.id)
    async with db.unit_of_work(org_b) as uow:
        assert (await uow.products.get(theirs.id)).sku == "SKU-KEEP"
