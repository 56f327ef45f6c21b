"""Server-side prepared statements and cached plans survive a tenant switch safely.

A statement prepared while tenant A is current is executed after switching to
tenant B on the same raw connection: the tenant predicate is evaluated at
execution, never frozen into the plan, so only B's rows come back, including
once Postgres has switched to a generic plan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tenancy.db.session import set_local_statement
from tests.security.support import Seeded, connect

pytestmark = pytest.mark.security

EMAILS = "SELECT email FROM customers"


@pytest.fixture(scope="module")
async def plpgsql_count(admin_url: URL) -> AsyncIterator[str]:
    """Name of a PL/pgSQL function (security invoker) counting the visible customers."""
    connection = await connect(admin_url)
    try:
        await connection.execute(
            "CREATE FUNCTION sec_count_plpgsql() RETURNS bigint LANGUAGE plpgsql STABLE AS"
            " $$ BEGIN RETURN (SELECT count(*) FROM public.customers); END $$;"
            " ALTER FUNCTION sec_count_plpgsql() OWNER TO tenancy_owner"
        )
        yield "sec_count_plpgsql"
        await connection.execute("DROP FUNCTION sec_count_plpgsql()")
    finally:
        await connection.close()


async def fetch_as(
    connection: asyncpg.Connection, tenant: Seeded, statement: asyncpg.PreparedStatement
) -> set[str]:
    """Execute ``statement`` in a transaction of ``tenant``; return the first column."""
    async with connection.transaction():
        await connection.execute(set_local_statement(tenant.org_id))
        return {row[0] for row in await statement.fetch()}


async def test_statement_prepared_under_a_returns_only_bs_rows_under_b(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(a.org_id))
        statement = await app_conn.prepare(EMAILS)
        assert {row[0] for row in await statement.fetch()} == a.emails
    assert await fetch_as(app_conn, b, statement) == b.emails


async def test_forced_generic_plan_returns_only_the_current_tenants_rows(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    await app_conn.execute("SET plan_cache_mode = force_generic_plan")
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(pair[0].org_id))
        statement = await app_conn.prepare(EMAILS)
    for tenant in (*pair, *pair):
        assert await fetch_as(app_conn, tenant, statement) == tenant.emails


async def test_parameterised_statement_keeps_isolating_after_the_generic_plan_switch(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # Postgres considers a generic plan after five executions; run well past that,
    # always asking for tenant A's rows while B is current.
    a, b = pair
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(a.org_id))
        statement = await app_conn.prepare("SELECT email FROM customers WHERE org_id = $1")
    for _ in range(8):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(b.org_id))
            assert await statement.fetch(a.org_id) == []


async def test_sql_prepare_and_execute_follow_the_current_tenant(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    await app_conn.execute(f"PREPARE sec_emails AS {EMAILS}")
    for tenant in (a, b, a, b, a, b, a):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(tenant.org_id))
            rows = await app_conn.fetch("EXECUTE sec_emails")
            assert {row[0] for row in rows} == tenant.emails


async def test_driver_statement_cache_reuse_follows_the_current_tenant(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # asyncpg caches the statement behind fetch() on first use and reuses it after.
    for tenant in (*pair, *pair):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(tenant.org_id))
            assert {row[0] for row in await app_conn.fetch(EMAILS)} == tenant.emails


async def test_plpgsql_cached_plan_follows_the_current_tenant(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded], plpgsql_count: str
) -> None:
    # PL/pgSQL keeps the plan of each query in the function for the whole session.
    for tenant in (*pair, *pair, *pair):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(tenant.org_id))
            assert await app_conn.fetchval(f"SELECT {plpgsql_count}()") == len(tenant.emails)
