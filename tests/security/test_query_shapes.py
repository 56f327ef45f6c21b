"""Query shapes under a tenant switch: whatever the shape, only the current tenant's rows.

Every shape runs through the library as the application role, once per tenant of a
seeded pair, and must return exactly that tenant's customers: none of the other
tenant's (or of any other test's), and not fewer than its own, so that no shape
passes by returning nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from tenancy import Database, IsolationViolation
from tests.security.support import Seeded, connect, seed_tenant

pytestmark = pytest.mark.security

SHAPES = {
    "plain select": "SELECT email FROM customers",
    "select for update": "SELECT email FROM customers FOR UPDATE",
    "tablesample": "SELECT email FROM customers TABLESAMPLE SYSTEM (100)",
    "distinct on": "SELECT DISTINCT ON (email) email FROM customers ORDER BY email",
    "join on id only": (
        "SELECT c.email FROM payment_orders AS o JOIN customers AS c ON c.id = o.customer_id"
    ),
    "join on the composite key": (
        "SELECT c.email FROM payment_orders AS o"
        " JOIN customers AS c ON (c.org_id, c.id) = (o.org_id, o.customer_id)"
    ),
    "full outer join": (
        "SELECT coalesce(c.email, d.email) FROM customers AS c"
        " FULL JOIN (SELECT email FROM customers) AS d USING (email)"
    ),
    "lateral join": (
        "SELECT c.email FROM customers AS c CROSS JOIN LATERAL"
        " (SELECT count(*) FROM payment_orders AS o WHERE o.customer_id = c.id) AS n"
    ),
    "cte": "WITH c AS (SELECT email FROM customers) SELECT email FROM c",
    "materialized cte": "WITH c AS MATERIALIZED (SELECT email FROM customers) SELECT email FROM c",
    "recursive cte": (
        "WITH RECURSIVE walk(email) AS ("
        " (SELECT min(email) FROM customers)"
        " UNION ALL"
        " SELECT (SELECT min(c.email) FROM customers AS c WHERE c.email > walk.email)"
        " FROM walk WHERE walk.email IS NOT NULL"
        ") SELECT email FROM walk WHERE email IS NOT NULL"
    ),
    "derived table": "SELECT email FROM (SELECT email FROM customers ORDER BY email) AS d",
    "in subquery": (
        "SELECT email FROM customers WHERE id IN (SELECT customer_id FROM payment_orders)"
    ),
    "correlated scalar subquery": (
        "SELECT (SELECT c.email FROM customers AS c WHERE c.id = o.customer_id)"
        " FROM payment_orders AS o"
    ),
    "exists": (
        "SELECT email FROM customers AS c"
        " WHERE EXISTS (SELECT 1 FROM payment_orders AS o WHERE o.customer_id = c.id)"
    ),
    "not exists": (
        "SELECT email FROM customers AS c WHERE NOT EXISTS"
        " (SELECT 1 FROM customers AS d WHERE d.email = c.email AND d.org_id <> c.org_id)"
    ),
    "union": (
        "SELECT email FROM customers UNION"
        " SELECT c.email FROM customers AS c JOIN payment_orders AS o ON o.customer_id = c.id"
    ),
    "window function": (
        "SELECT email FROM (SELECT email, row_number() OVER (ORDER BY email) FROM customers) AS w"
    ),
    "array_agg then unnest": "SELECT unnest(array_agg(email)) FROM customers",
    "jsonb_agg then expand": "SELECT jsonb_array_elements_text(jsonb_agg(email)) FROM customers",
    "inlinable sql function": "SELECT sec_emails_sql()",
    "sql function in from": "SELECT * FROM sec_emails_sql()",
    "plpgsql function": "SELECT * FROM sec_emails_plpgsql()",
    "plpgsql dynamic sql": "SELECT * FROM sec_emails_dynamic()",
    "security_invoker view": "SELECT email FROM sec_customers_view",
    "writable cte returning": (
        "WITH touched AS (UPDATE customers SET name = name RETURNING email)"
        " SELECT email FROM touched"
    ),
    "update returning": "UPDATE customers SET name = name RETURNING email",
    "update from returning": (
        "UPDATE payment_orders AS o SET description = o.description FROM customers AS c"
        " WHERE c.id = o.customer_id RETURNING c.email"
    ),
}

AGGREGATES: dict[str, tuple[str, Callable[[Seeded], object]]] = {
    "count": ("SELECT count(*) FROM customers", lambda t: len(t.emails)),
    "sum": ("SELECT sum(amount) FROM payment_orders", lambda t: t.order_total),
    "distinct tenants": ("SELECT count(DISTINCT org_id) FROM customers", lambda t: 1),
    "group by tenant": (
        "SELECT array_agg(org_id) FROM (SELECT org_id FROM customers GROUP BY org_id) AS g",
        lambda t: [t.org_id],
    ),
    "window count": (
        "SELECT array_agg(DISTINCT n) FROM (SELECT count(*) OVER () AS n FROM customers) AS w",
        lambda t: [len(t.emails)],
    ),
    "sum over a join": (
        "SELECT sum(o.amount) FROM payment_orders AS o JOIN customers AS c ON c.id = o.customer_id",
        lambda t: t.order_total,
    ),
    "scalar sql function": ("SELECT sec_customer_count()", lambda t: len(t.emails)),
}

_OBJECTS = """
CREATE FUNCTION sec_emails_sql() RETURNS SETOF text
    LANGUAGE sql STABLE AS $$ SELECT email::text FROM public.customers $$;
CREATE FUNCTION sec_customer_count() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT count(*) FROM public.customers $$;
CREATE FUNCTION sec_emails_plpgsql() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT email::text FROM public.customers;
END $$;
CREATE FUNCTION sec_emails_dynamic() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT email::text FROM public.customers';
END $$;
CREATE VIEW sec_customers_view WITH (security_invoker = true) AS
    SELECT org_id, email FROM public.customers;
GRANT SELECT ON sec_customers_view TO tenancy_app;
"""
_DROP = """
DROP VIEW sec_customers_view;
DROP FUNCTION sec_emails_sql(), sec_customer_count(), sec_emails_plpgsql(), sec_emails_dynamic();
"""


@pytest.fixture(scope="module", autouse=True)
async def invoker_objects(admin_url: URL) -> AsyncIterator[None]:
    """Functions (security invoker, the default) and a view owned by the schema owner."""
    connection = await connect(admin_url)
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL ROLE tenancy_owner")
            await connection.execute(_OBJECTS)
        yield
        # Dropped again so that the audit run elsewhere in this session sees the schema as
        # migrated.
        async with connection.transaction():
            await connection.execute("SET LOCAL ROLE tenancy_owner")
            await connection.execute(_DROP)
    finally:
        await connection.close()


async def first_column(db: Database, org_id: uuid.UUID, sql: str) -> set[object]:
    """Run ``sql`` for tenant ``org_id`` and return the values of its first column."""
    async with db.session(org_id) as session:
        return {row[0] for row in await session.execute(text(sql))}


@pytest.mark.parametrize("shape", SHAPES)
async def test_shape_returns_only_the_current_tenants_rows(
    db: Database, pair: tuple[Seeded, Seeded], shape: str
) -> None:
    for tenant in pair:
        assert await first_column(db, tenant.org_id, SHAPES[shape]) == tenant.emails


@pytest.mark.parametrize("aggregate", AGGREGATES)
async def test_aggregate_counts_only_the_current_tenants_rows(
    db: Database, pair: tuple[Seeded, Seeded], aggregate: str
) -> None:
    sql, expected = AGGREGATES[aggregate]
    for tenant in pair:
        async with db.session(tenant.org_id) as session:
            assert (await session.execute(text(sql))).scalar() == expected(tenant)


async def test_sql_function_is_inlined_into_the_calling_query(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # Otherwise the "inlinable" shape would be the plpgsql shape twice.
    plan = await app_conn.fetchval("EXPLAIN (FORMAT JSON) SELECT * FROM sec_emails_sql()")
    assert '"Relation Name": "customers"' in plan
    assert "sec_emails_sql" not in plan


async def test_plpgsql_function_is_not_inlined(app_conn: asyncpg.Connection) -> None:
    plan = await app_conn.fetchval("EXPLAIN (FORMAT JSON) SELECT * FROM sec_emails_plpgsql()")
    assert '"Node Type": "Function Scan"' in plan


async def test_rows_named_by_another_tenants_ids_are_not_found(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    async with db.session(a.org_id) as session:
        rows = await session.execute(
            text("SELECT email FROM customers WHERE id = ANY(:ids)"),
            {"ids": list(b.customer_ids)},
        )
        assert rows.all() == []


async def test_filtering_on_another_tenants_org_id_finds_nothing(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    async with db.session(a.org_id) as session:
        count = await session.execute(
            text("SELECT count(*) FROM customers WHERE org_id = :b"), {"b": b.org_id}
        )
        assert count.scalar() == 0


async def test_exists_on_another_tenants_row_is_false(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    async with db.session(a.org_id) as session:
        found = await session.execute(
            text("SELECT EXISTS (SELECT 1 FROM payment_orders WHERE id = ANY(:ids))"),
            {"ids": list(b.order_ids)},
        )
        assert found.scalar() is False


async def test_delete_returning_aimed_at_another_tenant_returns_and_deletes_nothing(
    db: Database,
) -> None:
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    async with db.session(a.org_id) as session:
        deleted = await session.execute(
            text("DELETE FROM payment_orders WHERE id = ANY(:ids) RETURNING id"),
            {"ids": list(b.order_ids)},
        )
        assert deleted.all() == []
    async with db.session(b.org_id) as session:
        remaining = await session.execute(text("SELECT id FROM payment_orders"))
        assert {row[0] for row in remaining} == b.order_ids


async def test_insert_returning_returns_the_new_row_in_the_current_tenant(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.session(org_a) as session:
        inserted = await session.execute(
            text("INSERT INTO customers (email) VALUES ('new@example.test') RETURNING org_id")
        )
        assert inserted.scalar() == org_a


async def test_upsert_on_another_tenants_email_inserts_into_the_current_tenant(
    db: Database,
) -> None:
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    victim = min(b.emails)
    async with db.session(a.org_id) as session:
        row = (
            await session.execute(
                text(
                    "INSERT INTO customers (email) VALUES (:email)"
                    " ON CONFLICT (org_id, email) DO UPDATE SET name = 'stolen'"
                    " RETURNING org_id, id, name"
                ),
                {"email": victim},
            )
        ).one()
    assert row.org_id == a.org_id
    assert row.id not in b.customer_ids
    assert row.name != "stolen"
    assert await first_column(db, b.org_id, "SELECT name FROM customers") == {"b"}


async def test_upsert_do_nothing_on_another_tenants_email_still_inserts(db: Database) -> None:
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    async with db.session(a.org_id) as session:
        inserted = await session.execute(
            text(
                "INSERT INTO customers (email) VALUES (:email) ON CONFLICT DO NOTHING RETURNING id"
            ),
            {"email": min(b.emails)},
        )
        assert len(inserted.all()) == 1


async def test_upsert_on_the_current_tenants_email_updates_its_own_row(db: Database) -> None:
    a = await seed_tenant(db, "a")
    async with db.session(a.org_id) as session:
        row = (
            await session.execute(
                text(
                    "INSERT INTO customers (email) VALUES (:email)"
                    " ON CONFLICT (org_id, email) DO UPDATE SET name = 'updated' RETURNING id"
                ),
                {"email": min(a.emails)},
            )
        ).one()
    assert row.id in a.customer_ids


async def test_upsert_on_another_tenants_primary_key_creates_a_row_of_ones_own(
    db: Database,
) -> None:
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    stolen_id = min(b.customer_ids)
    async with db.session(a.org_id) as session:
        row = (
            await session.execute(
                text(
                    "INSERT INTO customers (id, email) VALUES (:id, 'pk@example.test')"
                    " ON CONFLICT (org_id, id) DO UPDATE SET email = 'pk@example.test'"
                    " RETURNING org_id"
                ),
                {"id": stolen_id},
            )
        ).one()
    assert row.org_id == a.org_id
    assert await first_column(db, b.org_id, "SELECT email FROM customers") == b.emails


async def test_upsert_with_another_tenants_org_id_is_refused(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(
                text(
                    "INSERT INTO customers (org_id, email) VALUES (:b, 'x@example.test')"
                    " ON CONFLICT DO NOTHING"
                ),
                {"b": org_b},
            )


async def test_upsert_on_another_tenants_global_token_is_refused_and_changes_nothing(
    db: Database,
) -> None:
    # (chain, address) is a global key, held by its lookup row: the conflicting row is
    # the other tenant's, which DO UPDATE may not touch (nor may the app role update a
    # lookup row at all). The refusal tells only what the caller sent.
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    before = await first_column(db, b.org_id, "SELECT wallet_id FROM wallet_addresses")
    with pytest.raises(IsolationViolation):
        async with db.session(a.org_id) as session:
            await session.execute(
                text(
                    "INSERT INTO wallet_addresses (chain, address, wallet_id)"
                    " VALUES ('ethereum', :address, gen_random_uuid())"
                    " ON CONFLICT (chain, address) DO UPDATE SET wallet_id = excluded.wallet_id"
                ),
                {"address": b.wallet_address},
            )
    assert await first_column(db, b.org_id, "SELECT wallet_id FROM wallet_addresses") == before
