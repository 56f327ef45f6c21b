"""Role self-check: ``Database.connect`` (and ``ChainDatabase.connect``) refuse any role for
which RLS would not apply."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories import PlatformDatabase
from repositories.wallets.chain_database import ChainDatabase
from tenancy import TenancySettings, UnsafeDatabaseRole
from tenancy.db.engine import create_engine, verify_role
from tenancy.settings import APP_ROLE, CHAIN_ROLE, OWNER_ROLE, RELAY_ROLE

pytestmark = pytest.mark.security


def _as(settings: TenancySettings, url: URL) -> TenancySettings:
    return settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})


@pytest.fixture
async def member_of_relay(superuser: AsyncEngine) -> AsyncIterator[str]:
    """A throwaway login role with no attributes of its own, but a member of the relay role."""
    name = f"tenancy_test_{uuid.uuid4().hex[:12]}"
    async with superuser.begin() as connection:
        await connection.exec_driver_sql(f"CREATE ROLE {name} LOGIN IN ROLE {RELAY_ROLE}")
        database = (await connection.execute(text("SELECT current_database()"))).scalar()
        await connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {name}')
    yield name
    async with superuser.begin() as connection:
        await connection.exec_driver_sql(f'REVOKE CONNECT ON DATABASE "{database}" FROM {name}')
        await connection.exec_driver_sql(f"DROP ROLE {name}")


async def test_superuser_is_refused(settings: TenancySettings, admin_url: URL) -> None:
    with pytest.raises(UnsafeDatabaseRole, match="superuser"):
        await PlatformDatabase.connect(_as(settings, admin_url))


async def test_owner_of_the_tables_is_refused(settings: TenancySettings) -> None:
    with pytest.raises(UnsafeDatabaseRole, match="owns"):
        await PlatformDatabase.connect(_as(settings, settings.url_for_role(OWNER_ROLE)))


async def test_bypassrls_role_is_refused(settings: TenancySettings) -> None:
    with pytest.raises(UnsafeDatabaseRole, match="BYPASSRLS"):
        await PlatformDatabase.connect(_as(settings, settings.url_for_role(RELAY_ROLE)))


async def test_member_of_a_bypassrls_role_is_refused(
    settings: TenancySettings, member_of_relay: str
) -> None:
    url = settings.app_url().set(username=member_of_relay, password=None)

    with pytest.raises(UnsafeDatabaseRole, match="member"):
        await PlatformDatabase.connect(_as(settings, url))


async def test_app_role_is_accepted(settings: TenancySettings) -> None:
    database = await PlatformDatabase.connect(_as(settings, settings.url_for_role(APP_ROLE)))
    try:
        async with database.session(uuid.uuid4()) as session:
            role = (await session.execute(text("SELECT current_user"))).scalar()
    finally:
        await database.dispose()

    assert role == APP_ROLE


async def test_chain_role_is_accepted_by_the_chain_database(settings: TenancySettings) -> None:
    chain_db = await ChainDatabase.connect(settings)
    try:
        async with chain_db.engine.connect() as connection:
            role = (await connection.execute(text("SELECT current_user"))).scalar()
    finally:
        await chain_db.dispose()

    assert role == CHAIN_ROLE


async def test_the_chain_self_check_refuses_a_superuser_and_names_the_chain_role(
    settings: TenancySettings, admin_url: URL
) -> None:
    engine = create_engine(settings, url=admin_url)
    try:
        with pytest.raises(UnsafeDatabaseRole, match=r"superuser.*Connect as tenancy_chain"):
            await verify_role(engine, expected=CHAIN_ROLE)
    finally:
        await engine.dispose()
