"""Fixtures of the core suite: a superuser inspector, two populated tenants, a SQL counter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tests.core.tenant_graph import Tenants, new_tenant
from tests.core.traffic import Traffic, recording


@pytest.fixture(scope="session")
async def superuser(admin_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine that bypasses RLS, to inspect what really is in the tables."""
    engine = create_async_engine(admin_url, pool_size=2, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.fixture
async def tenants(db: Database) -> Tenants:
    """Two fresh tenants: ``a`` acts, ``b`` is the victim whose rows must not change."""
    return Tenants(await new_tenant(db, "A"), await new_tenant(db, "B"))


@pytest.fixture
async def one_connection_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` whose pool holds exactly one connection (size 1, no overflow)."""
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 30.0})
    )
    yield database
    await database.dispose()


@pytest.fixture
def traffic(db: Database) -> Iterator[Traffic]:
    """Record every statement ``db`` sends and every pool checkout while the test runs."""
    with recording(db.engine) as seen:
        yield seen
