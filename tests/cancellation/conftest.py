"""Fixtures of the cancellation suite: a pool of one connection, tenant A's witness, tenant B."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tests.cancellation.campaign import one_connection
from tests.cancellation.tenants import Tenant, Witness, seed_tenant


@pytest.fixture(scope="session")
async def superuser(admin_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine that bypasses RLS, to see what really is in the tables."""
    engine = create_async_engine(admin_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.fixture
async def one_connection_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` whose pool holds exactly one connection, shared by B and then A."""
    database = await PlatformDatabase.connect(one_connection(settings))
    yield database
    await database.dispose()


@pytest.fixture
async def witness(db: Database, superuser: AsyncEngine) -> Witness:
    """Tenant A, seeded, with what it has committed."""
    return Witness(await seed_tenant(db, "a"), superuser)


@pytest.fixture
async def tenant_b(db: Database) -> Tenant:
    """Tenant B, seeded; its units of work are the ones cancelled."""
    return await seed_tenant(db, "b")
