"""Two services migrating at once on one cluster: their role set-ups do not collide.

Roles are cluster-wide; two ``ensure_roles`` running together in two databases
would update the same ``pg_authid`` rows ("tuple concurrently updated").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from tenancy import TenancySettings
from tenancy.schema.roles import ensure_roles
from tests.cli.databases import janitor, new_name

ROUNDS = 25


@pytest.fixture
def two_databases(admin_url: URL) -> Iterator[tuple[URL, URL]]:
    """Two empty databases on the shared server, as the superuser."""
    first, second = new_name("roles_a"), new_name("roles_b")
    with janitor(admin_url, first), janitor(admin_url, second):
        yield admin_url.set(database=first), admin_url.set(database=second)


def _set_up_roles(engine: Engine, settings: TenancySettings) -> None:
    for _ in range(ROUNDS):
        with engine.begin() as connection:
            ensure_roles(connection, settings)


async def test_role_set_ups_in_two_databases_at_once_both_succeed(
    two_databases: tuple[URL, URL], settings: TenancySettings
) -> None:
    engines = [
        create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
        for url in two_databases
    ]
    try:
        await asyncio.gather(
            *(asyncio.to_thread(_set_up_roles, engine, settings) for engine in engines)
        )
    finally:
        for engine in engines:
            engine.dispose()
