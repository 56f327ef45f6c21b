"""Fail-closed: without a tenant, nothing is visible and nothing can be written.

On a raw app-role connection the tenant setting may be missing (a fresh
connection), explicitly empty (``SET LOCAL app.org_id = ''``), or the empty
string a pooled connection keeps after an earlier tenant transaction. In each
state every table reads as empty and every insert is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenancy import Database, IsolationViolation, TenancySettings
from tenancy.errors import translate
from tests.core.statements import STYLES, Statements
from tests.core.tenant_graph import TABLES, TENANT_SCOPED, TableSpec, Tenants

pytestmark = pytest.mark.security

each_style = pytest.mark.parametrize("sql", STYLES, ids=str)
SETTING = text("SELECT current_setting('app.org_id', true)")


@pytest.fixture(params=["never set", "set empty", "left by an earlier tenant"])
async def tenantless(
    request: pytest.FixtureRequest,
    one_connection_db: Database,
    settings: TenancySettings,
    tenants: Tenants,
) -> AsyncIterator[AsyncConnection]:
    """An app-role connection in a transaction that carries no tenant, in one of three ways."""
    if request.param == "never set":
        engine = create_async_engine(settings.app_url(), poolclass=NullPool)
        async with engine.connect() as connection:
            assert (await connection.execute(SETTING)).scalar() is None
            yield connection
        await engine.dispose()
        return
    if request.param == "left by an earlier tenant":
        # The pool's only connection has just served a transaction of tenant a.
        async with one_connection_db.session(tenants.a.org_id) as session:
            await session.execute(SETTING)
    async with one_connection_db.engine.connect() as connection:
        if request.param == "set empty":
            await connection.exec_driver_sql("SET LOCAL app.org_id = ''")
        assert (await connection.execute(SETTING)).scalar() == ""
        yield connection


@pytest.mark.parametrize("spec", TABLES, ids=str)
@each_style
async def test_no_row_is_visible_without_tenant(
    tenantless: AsyncConnection, spec: TableSpec, sql: Statements
) -> None:
    count = (await tenantless.execute(sql.count(spec))).scalar()

    assert count == 0


@pytest.mark.parametrize("spec", TENANT_SCOPED, ids=str)
@each_style
async def test_insert_without_tenant_is_refused(
    tenantless: AsyncConnection, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    # No org_id given: the column default reads the (missing) tenant setting.
    assert spec.tenant_column is not None
    row = {k: v for k, v in spec.new_row(tenants.a).items() if k != spec.tenant_column}

    with pytest.raises(DBAPIError) as caught:
        await tenantless.execute(sql.insert(spec, row))

    assert isinstance(translate(caught.value), IsolationViolation)


@pytest.mark.parametrize("spec", TENANT_SCOPED, ids=str)
@each_style
async def test_insert_naming_a_tenant_without_tenant_is_refused(
    tenantless: AsyncConnection, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    assert spec.tenant_column is not None
    row = {**spec.new_row(tenants.a), spec.tenant_column: tenants.a.org_id}

    with pytest.raises(DBAPIError) as caught:
        await tenantless.execute(sql.insert(spec, row))

    assert isinstance(translate(caught.value), IsolationViolation)


@pytest.mark.parametrize("spec", [s for s in TABLES if s.app_may_update], ids=str)
@each_style
async def test_update_without_tenant_changes_nothing(
    tenantless: AsyncConnection, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.update_by_key(spec, tenants.a.key(spec), dict([spec.change]))

    result = await tenantless.execute(statement)

    assert result.rowcount == 0
