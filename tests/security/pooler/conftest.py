"""Fixtures of the pooler suite: a real pgbouncer per module, and clients through it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.testing.pgbouncer import Bouncer, running_pgbouncer


@pytest.fixture(scope="module")
async def pgbouncer(settings: TenancySettings) -> AsyncIterator[Bouncer]:
    """pgbouncer in transaction pooling mode in front of the test database."""
    async with running_pgbouncer(settings.app_url()) as bouncer:
        yield bouncer


@pytest.fixture
def bounced_settings(settings: TenancySettings, pgbouncer: Bouncer) -> TenancySettings:
    """Settings for the app role through pgbouncer, with the pooler setting on."""
    return settings.model_copy(
        update={
            "database_url": pgbouncer.url(settings.app_url()).render_as_string(hide_password=False),
            "pooler": "pgbouncer-transaction",
            "pool_size": 5,
            "max_overflow": 0,
            "pool_timeout": 30.0,
        }
    )


@pytest.fixture
async def bounced_db(bounced_settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` through pgbouncer, configured with ``pooler="pgbouncer-transaction"``."""
    database = await PlatformDatabase.connect(bounced_settings)
    yield database
    await database.dispose()
