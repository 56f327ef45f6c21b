"""Privileges: the application role can read and write rows, and nothing else.

Each refused statement runs on a raw connection as ``tenancy_app`` inside a
transaction that is rolled back whatever happens, so that a statement that
wrongly succeeded could not change the database for the rest of the run.
"""

from __future__ import annotations

import io
import uuid

import asyncpg
import pytest
from sqlalchemy import select

from repositories.models import TENANT_TABLES, Wallet, WalletTransaction
from tenancy import Database
from tenancy.db.session import set_local_statement
from tests.security.support import Seeded, seed_tenant

pytestmark = pytest.mark.security

INSUFFICIENT_PRIVILEGE = "42501"
#: What the app role may run; resolve_wallet is the chain role's alone (migration 0008).
RESOLVERS = {"resolve_login", "resolve_payment_link"}
#: The identity definer functions of migration 0009: each refuses to run inside a
#: tenant or says nothing about another tenant (see sql/functions).
IDENTITY_FUNCTIONS = {
    "accept_invitation",
    "created_by_this_transaction",
    "find_invitee",
    "founded_by_this_transaction",
    "register_user",
    # Migration 0014: a membership accepted or ended with the user's member_of, in
    # the current tenant only.
    "join_organization",
    "remove_membership",
    # Migration 0016: founding and registering a member, each in one call with its
    # events, in the current tenant only.
    "found_organization",
    "register_member",
}

REFUSED = {
    "copy to a server file": "COPY customers TO '/tmp/sec_leak.csv'",
    "copy from a server file": "COPY customers FROM '/etc/hostname'",
    "copy to a program": "COPY customers TO PROGRAM 'cat'",
    "alter table": "ALTER TABLE customers ADD COLUMN sec_extra integer",
    "disable row level security": "ALTER TABLE customers DISABLE ROW LEVEL SECURITY",
    "stop forcing row level security": "ALTER TABLE customers NO FORCE ROW LEVEL SECURITY",
    "drop the tenant guard": "DROP POLICY tenant_guard ON customers",
    "add a permissive policy": "CREATE POLICY sec_open ON customers USING (true)",
    "create an index": "CREATE INDEX sec_ix ON customers (email)",
    "drop table": "DROP TABLE customers",
    "create table": "CREATE TABLE public.sec_table (id integer)",
    "create temporary table": "CREATE TEMP TABLE sec_temp (id integer)",
    "create function": "CREATE FUNCTION public.sec_f() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    "create view": "CREATE VIEW public.sec_view AS SELECT * FROM customers",
    "create schema": "CREATE SCHEMA sec_schema",
    "replace a resolver": (
        "CREATE OR REPLACE FUNCTION public.resolve_payment_link(p_token text)"
        " RETURNS TABLE(org_id uuid, payment_link_id uuid) LANGUAGE sql"
        " AS 'SELECT org_id, id FROM public.payment_links'"
    ),
    "weaken a resolver": "ALTER FUNCTION resolve_login(text) RESET search_path",
    "set role to the owner": "SET ROLE tenancy_owner",
    "set role to the relay": "SET ROLE tenancy_relay",
    "set role to the resolver owner": "SET ROLE tenancy_resolver",
    "set role to the chain jobs' role": "SET ROLE tenancy_chain",
    "set session authorization": "SET SESSION AUTHORIZATION postgres",
    "grant itself the owner role": "GRANT tenancy_owner TO tenancy_app",
    "alter role bypassrls": "ALTER ROLE tenancy_app BYPASSRLS",
    "alter role superuser": "ALTER ROLE tenancy_app SUPERUSER",
    "persist a default tenant": (
        "ALTER ROLE tenancy_app SET app.org_id = '00000000-0000-0000-0000-000000000001'"
    ),
    "switch off triggers and foreign keys": "SET session_replication_role = replica",
    "read a server file": "SELECT pg_read_file('/etc/hostname')",
    "import a large object": "SELECT lo_import('/etc/hostname')",
}


async def sqlstate_of(connection: asyncpg.Connection, sql: str) -> str | None:
    """Run ``sql`` in a transaction that is always rolled back; return its error's SQLSTATE."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(sql)
    except asyncpg.PostgresError as exc:
        return str(exc.sqlstate)
    finally:
        await transaction.rollback()
    return None


@pytest.mark.parametrize("statement", REFUSED)
async def test_statement_is_refused(app_conn: asyncpg.Connection, statement: str) -> None:
    assert await sqlstate_of(app_conn, REFUSED[statement]) == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize("table", [*TENANT_TABLES, "organizations", "users"])
async def test_truncate_is_refused(app_conn: asyncpg.Connection, table: str) -> None:
    assert await sqlstate_of(app_conn, f"TRUNCATE {table}") == INSUFFICIENT_PRIVILEGE


async def test_copy_to_stdout_streams_only_the_current_tenants_rows(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    for tenant in pair:
        out = io.BytesIO()
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(tenant.org_id))
            await app_conn.copy_from_table("customers", columns=["email"], output=out)
        assert set(out.getvalue().decode().splitlines()) == tenant.emails


async def test_copy_from_stdin_into_a_tenant_table_is_not_supported(
    app_conn: asyncpg.Connection, org_a: uuid.UUID
) -> None:
    # Postgres refuses COPY FROM on tables under row-level security outright.
    with pytest.raises(asyncpg.FeatureNotSupportedError):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(org_a))
            await app_conn.copy_to_table(
                "customers", source=io.BytesIO(b"sec@example.test\n"), columns=["email"]
            )


@pytest.mark.parametrize(
    "switch",
    [
        "SET LOCAL row_security = off",
        "SELECT set_config('row_security', 'off', true)",
        "SET row_security = off",
    ],
)
async def test_switching_row_security_off_makes_reads_fail_not_widen(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded], switch: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(pair[0].org_id))
            await app_conn.execute(switch)
            await app_conn.fetch("SELECT email FROM customers")


async def test_copy_to_stdout_with_row_security_off_fails(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(pair[0].org_id))
            await app_conn.execute("SET LOCAL row_security = off")
            await app_conn.copy_from_table("customers", output=io.BytesIO())


async def test_app_role_holds_no_privilege_on_any_sequence(
    admin_conn: asyncpg.Connection,
) -> None:
    # A shared counter would leak other tenants' volume through gaps in its values.
    usable = await admin_conn.fetch(
        """
        SELECT c.oid::regclass::text FROM pg_class AS c
        WHERE c.relkind = 'S'
          AND (has_sequence_privilege('tenancy_app', c.oid, 'USAGE')
               OR has_sequence_privilege('tenancy_app', c.oid, 'SELECT')
               OR has_sequence_privilege('tenancy_app', c.oid, 'UPDATE'))
        """
    )
    assert usable == []


async def test_no_tenant_table_draws_ids_from_a_sequence(admin_conn: asyncpg.Connection) -> None:
    serial = await admin_conn.fetch(
        """
        SELECT a.attrelid::regclass::text, a.attname FROM pg_attribute AS a
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = ANY($1::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
        """,
        list(TENANT_TABLES),
    )
    assert serial == []


async def test_every_definer_function_the_app_runs_pins_its_search_path(
    admin_conn: asyncpg.Connection,
) -> None:
    definers = await admin_conn.fetch(
        """
        SELECT p.proname, p.proconfig FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_function_privilege('tenancy_app', p.oid, 'EXECUTE')
        """
    )
    assert {row["proname"] for row in definers} >= RESOLVERS
    assert all("search_path=pg_catalog, pg_temp" in row["proconfig"] for row in definers)


async def test_every_definer_function_the_app_runs_is_a_narrow_resolver(
    admin_conn: asyncpg.Connection,
) -> None:
    # Anything else running with BYPASSRLS rights can see across tenants.
    definers = await admin_conn.fetch(
        """
        SELECT p.proname FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_function_privilege('tenancy_app', p.oid, 'EXECUTE')
        """
    )
    assert {row["proname"] for row in definers} <= RESOLVERS | IDENTITY_FUNCTIONS


async def seed_with_transactions(db: Database, chain: str) -> tuple[Seeded, Seeded]:
    """Seed two tenants, each with a pending transaction on ``chain``."""
    pair = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    for tenant in pair:
        async with db.session(tenant.org_id) as session:
            wallet = (await session.execute(select(Wallet.id))).scalar_one()
            session.add(
                WalletTransaction(
                    wallet_id=wallet,
                    chain=chain,
                    tx_hash=f"0x{uuid.uuid4().hex}",
                    direction="in",
                    amount=1,
                )
            )
    return pair


async def test_no_function_the_app_runs_lists_other_tenants(
    db: Database, app_conn: asyncpg.Connection
) -> None:
    # unsettled_wallet_tenants(chain, 0) names every tenant with transactions on a
    # chain: the chain-jobs role runs it, a tenant's request must not.
    a, _ = await seed_with_transactions(db, "ethereum")
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(a.org_id))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.fetch("SELECT org_id FROM unsettled_wallet_tenants('ethereum', 0)")


async def test_the_chain_role_lists_the_tenants_with_transactions_on_a_chain(
    db: Database, chain_conn: asyncpg.Connection
) -> None:
    a, b = await seed_with_transactions(db, "ethereum")

    listed = await chain_conn.fetch("SELECT org_id FROM unsettled_wallet_tenants('ethereum', 0)")

    assert {a.org_id, b.org_id} <= {row["org_id"] for row in listed}


async def test_the_chain_role_runs_only_the_two_chain_resolvers(
    admin_conn: asyncpg.Connection,
) -> None:
    definers = await admin_conn.fetch(
        """
        SELECT p.proname FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_function_privilege('tenancy_chain', p.oid, 'EXECUTE')
        """
    )
    assert {row["proname"] for row in definers} == {"resolve_wallet", "unsettled_wallet_tenants"}


@pytest.mark.parametrize(
    ("call", "columns"),
    [
        ("resolve_payment_link('x')", ["org_id", "payment_link_id"]),
        ("resolve_wallet('ethereum', 'x')", ["org_id", "wallet_id"]),
        ("resolve_login('x')", ["user_id", "password_hash", "is_active"]),
    ],
)
async def test_resolver_returns_only_its_narrow_columns(
    app_conn: asyncpg.Connection, call: str, columns: list[str]
) -> None:
    statement = await app_conn.prepare(f"SELECT * FROM {call}")
    assert [attribute.name for attribute in statement.get_attributes()] == columns


async def test_resolver_finds_a_wallet_by_its_exact_address_only(
    chain_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    tenant = pair[1]
    found = await chain_conn.fetch(
        "SELECT * FROM resolve_wallet('ethereum', $1)", tenant.wallet_address
    )
    assert [row["org_id"] for row in found] == [tenant.org_id]


@pytest.mark.parametrize(
    "call",
    [
        "resolve_payment_link('%')",
        "resolve_payment_link(NULL)",
        "resolve_login('%')",
        "resolve_login('%@example.test')",
    ],
)
async def test_resolver_cannot_list_with_patterns_or_nulls(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded], call: str
) -> None:
    assert await app_conn.fetch(f"SELECT * FROM {call}") == []


@pytest.mark.parametrize("address", ["'%'", "'0x%'", "''", "NULL"])
async def test_wallet_resolver_cannot_list_with_patterns_or_nulls(
    chain_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded], address: str
) -> None:
    assert await chain_conn.fetch(f"SELECT * FROM resolve_wallet('ethereum', {address})") == []


async def test_the_app_role_cannot_run_the_wallet_resolver(app_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.fetch("SELECT * FROM resolve_wallet('ethereum', '0x00')")
