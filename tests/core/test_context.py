"""The tenant context: a ContextVar that follows the task, and only the task."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from repositories.models import Customer
from tenancy import (
    Database,
    InvalidTenant,
    TenantContextRequired,
    current_tenant,
    require_tenant,
    tenant_context,
)
from tests.core.tenant_graph import Tenants

SETTING = text("SELECT current_setting('app.org_id')")


async def test_tenant_follows_await() -> None:
    org_id = uuid.uuid4()

    with tenant_context(org_id):
        await asyncio.sleep(0)
        seen = current_tenant()

    assert seen == org_id


def test_tenant_is_unbound_after_the_block() -> None:
    with tenant_context(uuid.uuid4()):
        pass

    assert current_tenant() is None


def test_nested_tenant_restores_the_outer_one() -> None:
    outer, inner = uuid.uuid4(), uuid.uuid4()

    with tenant_context(outer):
        with tenant_context(inner):
            pass
        seen = current_tenant()

    assert seen == outer


async def test_concurrent_tasks_keep_their_own_tenant() -> None:
    both_bound = asyncio.Barrier(2)

    async def work(org_id: uuid.UUID) -> uuid.UUID | None:
        with tenant_context(org_id):
            # Both tasks have bound their tenant before either reads it back.
            await both_bound.wait()
            return current_tenant()

    a, b = uuid.uuid4(), uuid.uuid4()

    assert list(await asyncio.gather(work(a), work(b))) == [a, b]


async def test_task_spawned_inside_inherits_the_tenant() -> None:
    org_id = uuid.uuid4()

    with tenant_context(org_id):
        child = asyncio.create_task(_read_tenant())

    # The child reads after the parent left the block: it holds its own copy.
    assert await child == org_id


async def test_thread_started_inside_inherits_the_tenant() -> None:
    org_id = uuid.uuid4()

    with tenant_context(org_id):
        seen = await asyncio.to_thread(current_tenant)

    assert seen == org_id


async def test_child_binding_does_not_leak_into_the_parent() -> None:
    parent, child = uuid.uuid4(), uuid.uuid4()
    child_bound, release = asyncio.Event(), asyncio.Event()

    async def rebind() -> None:
        with tenant_context(child):
            child_bound.set()
            await release.wait()

    with tenant_context(parent):
        task = asyncio.create_task(rebind())
        await child_bound.wait()
        seen = current_tenant()
        release.set()
        await task

    assert seen == parent


async def test_background_task_without_tenant_sees_none() -> None:
    assert await asyncio.create_task(_read_tenant()) is None


async def test_background_task_without_tenant_cannot_open_a_session(db: Database) -> None:
    async def job() -> None:
        async with db.session():
            pass

    with pytest.raises(TenantContextRequired):
        await asyncio.create_task(job())


def test_require_tenant_without_tenant_is_refused() -> None:
    with pytest.raises(TenantContextRequired):
        require_tenant()


def test_invalid_tenant_binds_nothing() -> None:
    with pytest.raises(InvalidTenant), tenant_context("not-a-uuid"):
        pass

    assert current_tenant() is None


async def test_session_uses_the_tenant_bound_by_db_tenant(db: Database, tenants: Tenants) -> None:
    async with db.tenant(tenants.a.org_id), db.session() as session:
        setting = (await session.execute(SETTING)).scalar()

    assert setting == str(tenants.a.org_id)


async def test_session_under_db_tenant_sees_only_that_tenants_rows(
    db: Database, tenants: Tenants
) -> None:
    async with db.tenant(tenants.b.org_id), db.session() as session:
        ids = set((await session.execute(text("SELECT id FROM customers"))).scalars())

    assert ids == {tenants.b.id("customers")}


async def test_explicit_org_id_overrides_the_bound_tenant(db: Database, tenants: Tenants) -> None:
    async with db.tenant(tenants.a.org_id), db.session(tenants.b.org_id) as session:
        setting = (await session.execute(SETTING)).scalar()

    assert setting == str(tenants.b.org_id)


async def test_orm_insert_under_db_tenant_lands_in_that_tenant(
    db: Database, tenants: Tenants
) -> None:
    async with db.tenant(tenants.a.org_id), db.session() as session:
        customer = Customer(email=f"{uuid.uuid4().hex}@example.com")
        session.add(customer)

    assert customer.org_id == tenants.a.org_id


async def _read_tenant() -> uuid.UUID | None:
    await asyncio.sleep(0)
    return current_tenant()
