"""Property: under random concurrent operations, each tenant sees exactly its own rows.

Runs on a pool of one connection (every transaction reuses the connection the
previous tenant used) and of two (transactions of different tenants overlap),
each with RLS alone and with the ORM tenant filter on top.
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy.ext.asyncio import async_sessionmaker

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.db.orm_filter import install_tenant_filter
from tenancy.db.session import TenantSession
from tests.property.loop_thread import LoopThread
from tests.property.machine import machine_for
from tests.property.profiles import active_profile

pytestmark = pytest.mark.security


class FilteredSession(TenantSession):
    """Tenant sessions with the ORM tenant filter installed (by ``connect``)."""


async def connect(settings: TenancySettings, pool_size: int, orm_filter: bool) -> Database:
    """Return a ``Database`` with exactly ``pool_size`` connections, filter on or off."""
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": pool_size, "max_overflow": 0, "pool_timeout": 60})
    )
    if orm_filter:
        install_tenant_filter(FilteredSession)
        database.sessionmaker = async_sessionmaker(
            database.engine,
            sync_session_class=FilteredSession,
            expire_on_commit=False,
            autoflush=False,
        )
    return database


@pytest.mark.parametrize("orm_filter", [False, True], ids=["rls_only", "rls_and_orm_filter"])
@pytest.mark.parametrize("pool_size", [1, 2], ids=["pool_1", "pool_2"])
def test_each_tenant_sees_exactly_its_own_rows_under_random_concurrent_operations(
    settings: TenancySettings, loop_thread: LoopThread, pool_size: int, orm_filter: bool
) -> None:
    db = loop_thread.run(connect(settings, pool_size, orm_filter))
    try:
        run_state_machine_as_test(machine_for(loop_thread, db), settings=active_profile())
    finally:
        loop_thread.run(db.dispose())
