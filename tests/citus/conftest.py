"""Fixtures of the scale-out suite: one local Citus cluster for the whole package."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import APP, DBNAME, lay_out


@pytest.fixture(scope="package")
def cluster() -> Iterator[CitusCluster]:
    """A coordinator and two workers on free loopback ports; stopped and deleted at the end."""
    cluster = CitusCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="package")
def ready(cluster: CitusCluster) -> list[str]:
    """The service schema in its own database, distributed; what the step reported."""
    url = cluster.create_database(DBNAME)

    async def create() -> list[str]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(lay_out)
        finally:
            await engine.dispose()

    return asyncio.run(create())


@pytest.fixture
async def app_pool(cluster: CitusCluster, ready: list[str]) -> AsyncIterator[asyncpg.Pool]:
    """Connections to the service database as its app role (no superuser, BYPASSRLS or owner)."""
    pool = await asyncpg.create_pool(
        host="127.0.0.1",
        port=cluster.coordinator.port,
        user=APP,
        database=DBNAME,
        min_size=1,
        max_size=12,
    )
    try:
        yield pool
    finally:
        await pool.close()
