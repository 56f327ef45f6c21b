"""Fixtures of the CLI suite: databases of its own, empty or migrated, to break at will.

A migrated database is cloned from a template migrated once per run
(``CREATE DATABASE ... TEMPLATE``), much faster than migrating each one. Roles
are cluster-wide and exist once the root ``admin_url`` fixture has migrated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.schema.migration import upgrade
from tests.cli.databases import janitor, new_name, settings_for


@pytest.fixture
def empty_url(admin_url: URL) -> Iterator[URL]:
    """Superuser URL of a new, empty database (dropped afterwards)."""
    name = new_name("empty")
    with janitor(admin_url, name):
        yield admin_url.set(database=name)


@pytest.fixture(scope="session")
def migrated_template(admin_url: URL) -> Iterator[str]:
    """Name of a database migrated to head, used only as a template to clone."""
    name = new_name("template")
    with janitor(admin_url, name):
        upgrade(admin_url.set(database=name))
        yield name


@pytest.fixture
def scratch_url(admin_url: URL, migrated_template: str) -> Iterator[URL]:
    """Superuser URL of a migrated database of this test's own (dropped afterwards)."""
    name = new_name("scratch")
    with janitor(admin_url, name, template=migrated_template):
        yield admin_url.set(database=name)


@pytest.fixture
def scratch_settings(scratch_url: URL) -> TenancySettings:
    """Settings for the scratch database."""
    return settings_for(scratch_url)


@pytest.fixture
async def scratch_db(scratch_settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` on the scratch database as ``tenancy_app``."""
    database = await PlatformDatabase.connect(scratch_settings)
    yield database
    await database.dispose()


@pytest.fixture
async def scratch_superuser(scratch_url: URL) -> AsyncIterator[AsyncEngine]:
    """A superuser engine on the scratch database, to break its schema for good."""
    engine = create_async_engine(scratch_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def module_url(admin_url: URL, migrated_template: str) -> Iterator[URL]:
    """A migrated database shared by one test module (tests change it only in rollbacks)."""
    name = new_name("module")
    with janitor(admin_url, name, template=migrated_template):
        yield admin_url.set(database=name)


@pytest.fixture
async def breakable(module_url: URL) -> AsyncIterator[AsyncConnection]:
    """A superuser connection to ``module_url`` in a transaction that is always rolled back.

    DDL is transactional in Postgres (roles included), so a test may break the
    schema here and audit it on the same connection; nothing outlives the test.
    """
    engine = create_async_engine(module_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            try:
                yield connection
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()
