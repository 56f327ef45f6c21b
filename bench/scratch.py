"""A throwaway, migrated database for benchmark scripts (created and dropped per run)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import URL, make_url

from tenancy import TenancySettings
from tenancy.migration import upgrade
from tenancy.settings import APP_ROLE

SERVER = os.environ.get("TENANCY_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432")


@asynccontextmanager
async def scratch_database(prefix: str = "tenancy_bench") -> AsyncIterator[TenancySettings]:
    """Create and migrate a database; yield app-role settings for it; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        admin_url: URL = make_url(f"{SERVER}/{name}").set(drivername="postgresql+asyncpg")
        await asyncio.to_thread(upgrade, admin_url)
        rendered = admin_url.render_as_string(hide_password=False)
        base = TenancySettings(admin_database_url=rendered, pool_size=16, max_overflow=0)
        app = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
        yield base.model_copy(update={"database_url": app})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
