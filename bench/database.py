"""A throwaway, migrated database for benchmark scripts (created and dropped per run)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tenancy import TenancySettings
from tenancy.schema.throwaway_database import (
    DEFAULT_SERVER_URL,
    app_settings,
    scratch_database,
    scratch_name,
)

SERVER = os.environ.get("TENANCY_BENCH_SERVER", DEFAULT_SERVER_URL)


@asynccontextmanager
async def bench_database(
    prefix: str = "tenancy_bench", server: str = SERVER, **options: object
) -> AsyncIterator[TenancySettings]:
    """Create and migrate a database; yield app-role settings for it; drop it afterwards."""
    async with scratch_database(server, scratch_name(prefix)) as admin_url:
        yield app_settings(admin_url, **options)
