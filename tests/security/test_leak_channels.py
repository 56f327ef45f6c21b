"""Leak channels: existence oracles, side-effecting functions, planner statistics.

Row-level security hides rows from results; these tests look at the side doors:
whether a unique key tells one tenant what another has, whether a function
called in a WHERE clause ever gets to see another tenant's values (the probe
from Postgres's own ``rowsecurity`` regression test), whether an error raised
while evaluating a condition can quote them, and whether column statistics can.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from repositories.models import Customer, PaymentOrder, Product, WalletTransaction
from tenancy import Conflict, Database
from tenancy.db.session import set_local_statement
from tests.security.support import Seeded, connect, seed_tenant

pytestmark = pytest.mark.security

F_LEAK = """
CREATE FUNCTION sec_f_leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    RAISE NOTICE 'f_leak => %', $1;
    RETURN true;
END $$;
ALTER FUNCTION sec_f_leak(text) OWNER TO tenancy_owner;
"""

PROBED = {
    "select": "SELECT email FROM customers WHERE sec_f_leak(email)",
    "join": (
        "SELECT c.email FROM customers AS c JOIN payment_orders AS o ON o.customer_id = c.id"
        " WHERE sec_f_leak(c.email)"
    ),
    "join condition": (
        "SELECT c.email FROM payment_orders AS o JOIN customers AS c"
        " ON o.customer_id = c.id AND sec_f_leak(c.email)"
    ),
    "subquery": "SELECT email FROM (SELECT email FROM customers) AS s WHERE sec_f_leak(email)",
    "cte": "WITH c AS (SELECT email FROM customers) SELECT email FROM c WHERE sec_f_leak(email)",
    "exists": (
        "SELECT 1 FROM payment_orders AS o WHERE EXISTS"
        " (SELECT 1 FROM customers AS c WHERE c.id = o.customer_id AND sec_f_leak(c.email))"
    ),
    "update": "UPDATE customers SET name = name WHERE sec_f_leak(email)",
}


@pytest.fixture(scope="module")
async def f_leak(admin_url: URL) -> AsyncIterator[None]:
    """The notice-raising probe function: not leakproof, cheap, so planned early."""
    connection = await connect(admin_url)
    try:
        await connection.execute(F_LEAK)
        yield
        await connection.execute("DROP FUNCTION sec_f_leak(text)")
    finally:
        await connection.close()


async def notices_of(connection: asyncpg.Connection, org_id: uuid.UUID, sql: str) -> set[str]:
    """Run ``sql`` for ``org_id`` (rolled back) and return the values ``sec_f_leak`` saw."""
    seen: list[str] = []

    def listen(_: object, message: asyncpg.PostgresLogMessage) -> None:
        if message.message.startswith("f_leak => "):
            seen.append(message.message.removeprefix("f_leak => "))

    connection.add_log_listener(listen)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(set_local_statement(org_id))
            await connection.execute(sql)
        finally:
            await transaction.rollback()
        # Notices are handed to listeners through call_soon, ahead of this task's
        # resumption; one more round trip makes the ordering explicit.
        await connection.execute("SELECT 1")
    finally:
        connection.remove_log_listener(listen)
    return set(seen)


@pytest.mark.usefixtures("f_leak")
@pytest.mark.parametrize("shape", PROBED)
async def test_probe_function_in_a_condition_sees_only_the_current_tenants_values(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded], shape: str
) -> None:
    for tenant in pair:
        assert await notices_of(app_conn, tenant.org_id, PROBED[shape]) == tenant.emails


@pytest.mark.usefixtures("f_leak")
async def test_probe_function_in_a_delete_sees_only_the_current_tenants_values(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # notices_of() rolls the delete back.
    sql = "DELETE FROM wallets WHERE sec_f_leak(address)"
    for tenant in pair:
        assert await notices_of(app_conn, tenant.org_id, sql) == {tenant.wallet_address}


@pytest.mark.usefixtures("f_leak")
async def test_probe_function_sees_only_the_current_tenant_under_index_scans(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    await app_conn.execute("SET enable_seqscan = off")
    sql = "SELECT email FROM customers WHERE email >= '' AND sec_f_leak(email)"
    for tenant in pair:
        assert await notices_of(app_conn, tenant.org_id, sql) == tenant.emails


async def test_failing_cast_in_a_condition_never_evaluates_another_tenants_rows(
    app_conn: asyncpg.Connection, org_a: uuid.UUID, pair: tuple[Seeded, Seeded]
) -> None:
    # The cast would fail on any email; a tenant with no customers gets no error.
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(org_a))
        assert await app_conn.fetchval("SELECT count(*) FROM customers WHERE email::int > 0") == 0


async def test_division_by_zero_oracle_on_another_tenants_value_stays_silent(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    async with app_conn.transaction():
        await app_conn.execute(set_local_statement(a.org_id))
        count = await app_conn.fetchval(
            "SELECT count(*) FROM customers WHERE 1 / (CASE WHEN email = $1 THEN 0 ELSE 1 END) = 1",
            min(b.emails),
        )
    assert count == len(a.emails)


async def test_error_raised_by_a_condition_quotes_only_the_current_tenants_values(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    with pytest.raises(asyncpg.InvalidTextRepresentationError) as raised:
        async with app_conn.transaction():
            await app_conn.execute(set_local_statement(a.org_id))
            await app_conn.fetch("SELECT 1 FROM customers WHERE email::int > 0")
    assert any(email in raised.value.message for email in a.emails)
    assert not any(email in raised.value.message for email in b.emails)


async def test_column_statistics_of_tenant_tables_are_hidden_from_the_app(
    admin_conn: asyncpg.Connection, app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # pg_stats would otherwise show most common values and histograms of all tenants.
    await admin_conn.execute("ANALYZE customers")
    assert (
        await admin_conn.fetchval("SELECT count(*) FROM pg_stats WHERE tablename = 'customers'") > 0
    )
    assert await app_conn.fetch("SELECT attname FROM pg_stats WHERE tablename = 'customers'") == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Customer(email="same@example.test"), id="customer email"),
        pytest.param(lambda: Product(name="p", sku="SAME-SKU"), id="product sku"),
    ],
)
async def test_two_tenants_may_hold_the_same_natural_key(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID, make: Callable[[], object]
) -> None:
    for org in (org_a, org_b):
        async with db.session(org) as session:
            session.add(make())


async def test_two_tenants_may_use_the_same_idempotency_key(db: Database) -> None:
    # seed_tenant gives the first order of every tenant the same key.
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    for tenant in (a, b):
        async with db.session(tenant.org_id) as session:
            keys = await session.execute(text("SELECT idempotency_key FROM payment_orders"))
            assert "idem-shared" in {row[0] for row in keys}


async def test_two_tenants_may_record_the_same_chain_transfer(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    # A transfer between two tenants' wallets is recorded once by each.
    tx_hash = f"0x{uuid.uuid4().hex}"
    for tenant in pair:
        async with db.session(tenant.org_id) as session:
            wallet = (await session.execute(text("SELECT id FROM wallets"))).scalar_one()
            session.add(
                WalletTransaction(
                    wallet_id=wallet, chain="ethereum", tx_hash=tx_hash, direction="in", amount=5
                )
            )


async def test_duplicate_natural_key_within_one_tenant_is_still_a_conflict(
    db: Database, org_a: uuid.UUID
) -> None:
    # The unique keys exist: tenants share values only because org_id is part of them.
    async with db.session(org_a) as session:
        session.add(Customer(email="twice@example.test"))
    with pytest.raises(Conflict):
        async with db.session(org_a) as session:
            session.add(Customer(email="twice@example.test"))


async def test_duplicate_idempotency_key_within_one_tenant_is_still_a_conflict(
    db: Database,
) -> None:
    a = await seed_tenant(db, "a")
    with pytest.raises(Conflict):
        async with db.session(a.org_id) as session:
            session.add(
                PaymentOrder(
                    customer_id=min(a.customer_ids),
                    amount=1,
                    currency="EUR",
                    idempotency_key="idem-shared",
                )
            )
