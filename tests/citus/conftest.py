"""Fixtures of the scale-out suite: one local Citus cluster for the whole package."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories import PlatformDatabase
from tenancy import TenancySettings
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.settings import APP_ROLE
from tests.citus import outbox_schema
from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import APP, DBNAME, lay_out
from tests.events.conftest import kafka_settings_for


@pytest.fixture(scope="package")
def cluster() -> Iterator[CitusCluster]:
    """A coordinator and two workers on free loopback ports; stopped and deleted at the end."""
    cluster = CitusCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def _laid_out(
    cluster: CitusCluster, dbname: str, how: Callable[[Connection], list[str]]
) -> list[str]:
    url = cluster.create_database(dbname)

    async def create() -> list[str]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(how)
        finally:
            await engine.dispose()

    return asyncio.run(create())


@pytest.fixture(scope="package")
def ready(cluster: CitusCluster) -> list[str]:
    """The service schema in its own database, distributed; what the step reported."""
    return _laid_out(cluster, DBNAME, lay_out)


@pytest.fixture(scope="package")
def outbox_ready(cluster: CitusCluster) -> list[str]:
    """Organizations, customers and the outbox in their own database, distributed."""
    return _laid_out(cluster, outbox_schema.DBNAME, outbox_schema.lay_out)


@pytest.fixture
def outbox_settings(cluster: CitusCluster, outbox_ready: list[str]) -> TenancySettings:
    """Settings for the outbox database on the coordinator, as its app role."""
    admin = cluster.url(outbox_schema.DBNAME)
    return TenancySettings(
        database_url=admin.set(username=outbox_schema.APP).render_as_string(),
        admin_database_url=admin.render_as_string(),
        app_role=outbox_schema.APP,
        relay_role=outbox_schema.RELAY,
        pool_size=4,
        max_overflow=0,
    )


@pytest.fixture
async def platform_db(outbox_settings: TenancySettings) -> AsyncIterator[PlatformDatabase]:
    """The library's database, connected as the app role (its role checked as in production)."""
    database = await PlatformDatabase.connect(outbox_settings)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(scope="package")
async def broker() -> AsyncIterator[LocalBroker]:
    """The bundled Tansu broker on a free loopback port, for the package."""
    async with LocalBroker() as running:
        yield running


@pytest.fixture
def kafka_settings(broker: LocalBroker) -> KafkaSettings:
    """Producer settings for the test broker: no idempotence, short timeouts."""
    return kafka_settings_for(broker)


@pytest.fixture
def relay_settings(cluster: CitusCluster, outbox_ready: list[str]) -> RelaySettings:
    """A relay on the coordinator as the relay role, with a topic prefix of this test's own."""
    url = cluster.url(outbox_schema.DBNAME).set(username=outbox_schema.RELAY)
    return RelaySettings(
        database_url=url.render_as_string(),
        relay_id=f"relay-{uuid.uuid4().hex[:8]}",
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        batch_size=200,
        poll_interval=0.5,
        lease_seconds=8.0,
        backoff_initial=0.2,
        backoff_max=1.0,
        max_attempts=3,
    )


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


@asynccontextmanager
async def library_database(
    cluster: CitusCluster, dbname: str, *, pool_size: int = 2, max_overflow: int = 0
) -> AsyncIterator[PlatformDatabase]:
    """The library on the coordinator database ``dbname``, as the app role."""
    admin = cluster.url(dbname).render_as_string(hide_password=False)
    base = TenancySettings(admin_database_url=admin, pool_size=pool_size, max_overflow=max_overflow)
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    database = await PlatformDatabase.connect(base.model_copy(update={"database_url": app_url}))
    try:
        yield database
    finally:
        await database.dispose()
