"""Pooler safety: isolation through pgbouncer in transaction pooling mode.

pgbouncer hands each transaction to whichever server connection is free, so
anything a client leaves on a server connection outside a transaction (a
session ``SET``, a named prepared statement) reaches other clients, and anything
it expects to find there again may be gone. The tenant is set with ``SET LOCAL``
only, which ends with the transaction; these tests show that this holds through
a real pgbouncer, and what the driver must (not) do for it to work at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from repositories import PlatformDatabase
from tenancy import Database, DatabaseUnavailable, IsolationViolation, TenancySettings
from tenancy.db.session import set_local_statement
from tenancy.testing.pgbouncer import Bouncer
from tests.security.support import Seeded, connect, seed_tenant

pytestmark = pytest.mark.security

TABLES = ("customers", "products", "agents", "wallets")
FOREIGN_INSERTS = {
    "customers": "INSERT INTO customers (org_id, email) VALUES (:b, 'x@example.test')",
    "products": "INSERT INTO products (org_id, name) VALUES (:b, 'x')",
    "agents": "INSERT INTO agents (org_id, name) VALUES (:b, 'x')",
    "wallets": "INSERT INTO wallets (org_id, chain, address) VALUES (:b, 'ethereum', '0xsec')",
}
PROBE = text("SELECT pg_backend_pid(), current_setting('app.org_id', true)")


@pytest.fixture(scope="module")
async def tenants(db: Database) -> list[Seeded]:
    """Twenty seeded tenants."""
    return [await seed_tenant(db, f"pool{i}", customers=2) for i in range(20)]


@pytest.fixture
async def shared_client(
    settings: TenancySettings, pgbouncer: Bouncer
) -> AsyncIterator[asyncpg.Connection]:
    """A raw client of the one-server-connection pool (statement cache off, as it must be)."""
    connection = await connect(
        pgbouncer.url(settings.app_url(), single=True), statement_cache_size=0
    )
    yield connection
    await connection.close()


@pytest.fixture
async def single_db(
    bounced_settings: TenancySettings, pgbouncer: Bouncer
) -> AsyncIterator[Database]:
    """A ``Database`` on the one-server-connection pool."""
    url = pgbouncer.url(bounced_settings.app_url(), single=True)
    database = await PlatformDatabase.connect(
        bounced_settings.model_copy(
            update={"database_url": url.render_as_string(hide_password=False)}
        )
    )
    yield database
    await database.dispose()


async def backend_and_tenant(connection: asyncpg.Connection) -> tuple[int, str | None]:
    """Return the server process behind ``connection`` and the tenant it carries."""
    row = await connection.fetchrow("SELECT pg_backend_pid(), current_setting('app.org_id', true)")
    assert row is not None
    return row[0], row[1]


async def test_default_settings_are_refused_by_pgbouncer_at_startup(
    settings: TenancySettings, pgbouncer: Bouncer
) -> None:
    # statement_timeout as a startup parameter is not one pgbouncer accepts.
    direct = settings.model_copy(
        update={
            "database_url": pgbouncer.url(settings.app_url()).render_as_string(hide_password=False)
        }
    )
    with pytest.raises(DatabaseUnavailable) as raised:
        await PlatformDatabase.connect(direct)
    assert "unsupported startup parameter" in str(raised.value.__cause__)


async def test_driver_statement_cache_breaks_when_the_server_connection_changes(
    settings: TenancySettings, pgbouncer: Bouncer, pair: tuple[Seeded, Seeded]
) -> None:
    # asyncpg's defaults: statements are prepared once under a name and reused.
    url = pgbouncer.url(settings.app_url())
    cached = await connect(url)
    holder = await connect(url, statement_cache_size=0)
    try:
        await cached.fetch("SELECT count(*) FROM customers")
        async with holder.transaction():
            # Holds the server connection the statement was prepared on.
            await holder.execute("SELECT 1")
            with pytest.raises(asyncpg.InvalidSQLStatementNameError):
                await cached.fetch("SELECT count(*) FROM customers")
    finally:
        await asyncio.gather(cached.close(), holder.close())


async def test_pooler_setting_survives_a_change_of_server_connection(
    bounced_settings: TenancySettings,
    settings: TenancySettings,
    pgbouncer: Bouncer,
    pair: tuple[Seeded, Seeded],
) -> None:
    a = pair[0]
    database = await PlatformDatabase.connect(bounced_settings.model_copy(update={"pool_size": 1}))
    holder = await connect(pgbouncer.url(settings.app_url()), statement_cache_size=0)
    query = text("SELECT email FROM customers")
    try:
        async with database.session(a.org_id) as session:
            assert {row[0] for row in await session.execute(query)} == a.emails
        async with holder.transaction():
            await holder.execute("SELECT 1")
            async with database.session(a.org_id) as session:
                assert {row[0] for row in await session.execute(query)} == a.emails
    finally:
        await holder.close()
        await database.dispose()


async def test_statement_timeout_still_applies_through_pgbouncer(
    bounced_db: Database, bounced_settings: TenancySettings, pair: tuple[Seeded, Seeded]
) -> None:
    async with bounced_db.session(pair[0].org_id) as session:
        timeout = await session.execute(
            text("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        )
        assert timeout.scalar() == str(bounced_settings.statement_timeout_ms)


@pytest.mark.parametrize("table", TABLES)
async def test_another_tenants_row_stays_invisible_through_pgbouncer(
    bounced_db: Database, pair: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = pair
    theirs = await row_id(bounced_db, b.org_id, table)
    async with bounced_db.session(a.org_id) as session:
        found = await session.execute(
            text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": theirs}
        )
        assert found.scalar() == 0


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET created_at = created_at WHERE id = :id",
        "DELETE FROM {table} WHERE id = :id",
    ],
    ids=["update", "delete"],
)
async def test_another_tenants_row_cannot_be_changed_through_pgbouncer(
    bounced_db: Database, pair: tuple[Seeded, Seeded], table: str, statement: str
) -> None:
    a, b = pair
    theirs = await row_id(bounced_db, b.org_id, table)
    async with bounced_db.session(a.org_id) as session:
        result = await session.execute(text(statement.format(table=table)), {"id": theirs})
        assert result.rowcount == 0
    assert await row_id(bounced_db, b.org_id, table) is not None


@pytest.mark.parametrize("table", TABLES)
async def test_insert_for_another_tenant_is_refused_through_pgbouncer(
    bounced_db: Database, pair: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = pair
    with pytest.raises(IsolationViolation):
        async with bounced_db.session(a.org_id) as session:
            await session.execute(text(FOREIGN_INSERTS[table]), {"b": b.org_id})


@pytest.mark.parametrize("table", TABLES)
async def test_own_row_cannot_be_moved_to_another_tenant_through_pgbouncer(
    bounced_db: Database, pair: tuple[Seeded, Seeded], table: str
) -> None:
    a, b = pair
    own = await row_id(bounced_db, a.org_id, table)
    with pytest.raises(IsolationViolation):
        async with bounced_db.session(a.org_id) as session:
            await session.execute(
                text(f"UPDATE {table} SET org_id = :b WHERE id = :id"), {"b": b.org_id, "id": own}
            )


async def row_id(database: Database, org_id: uuid.UUID, table: str) -> uuid.UUID | None:
    """Return the id of one row of ``table`` as ``org_id`` sees it."""
    async with database.session(org_id) as session:
        return (await session.execute(text(f"SELECT id FROM {table} LIMIT 1"))).scalar()


async def run_tenant_task(database: Database, tenant: Seeded, number: int) -> list[str]:
    """Read the tenant's customers and add an agent; return what was wrong."""
    problems: list[str] = []
    async with database.session(tenant.org_id) as session:
        emails = {row[0] for row in await session.execute(text("SELECT email FROM customers"))}
        if emails != tenant.emails:
            problems.append(f"task {number} saw {sorted(emails - tenant.emails)[:3]}")
        written = await session.execute(
            text("INSERT INTO agents (name) VALUES (:name) RETURNING org_id"),
            {"name": f"task {number}"},
        )
        if written.scalar() != tenant.org_id:
            problems.append(f"task {number} wrote into another tenant")
    return problems


async def concurrent_run(
    database: Database, tenants: list[Seeded]
) -> tuple[list[str], list[BaseException]]:
    """Run 300 tasks over ``tenants`` at once; return isolation problems and errors."""
    outcomes = await asyncio.gather(
        *(run_tenant_task(database, tenants[i % len(tenants)], i) for i in range(300)),
        return_exceptions=True,
    )
    problems = [p for o in outcomes if isinstance(o, list) for p in o]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return problems, errors


async def test_concurrent_tenants_through_pgbouncer_never_see_each_others_rows(
    bounced_db: Database, tenants: list[Seeded]
) -> None:
    problems, errors = await concurrent_run(bounced_db, tenants)
    assert problems == []
    # Not vacuous: most tasks ran to the end (the failures are the driver's, below).
    assert len(errors) < 300


async def test_concurrent_tenants_through_pgbouncer_all_succeed(
    bounced_db: Database, tenants: list[Seeded]
) -> None:
    _, errors = await concurrent_run(bounced_db, tenants)
    assert errors == []


async def test_tenant_ends_with_the_transaction_on_a_shared_server_connection(
    single_db: Database, shared_client: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a = pair[0]
    async with single_db.session(a.org_id) as session:
        backend, tenant = (await session.execute(PROBE)).one()
        assert tenant == str(a.org_id)
    assert await backend_and_tenant(shared_client) in ((backend, ""), (backend, None))
    assert await shared_client.fetchval("SELECT count(*) FROM customers") == 0


async def test_tenant_ends_with_a_rollback_on_a_shared_server_connection(
    single_db: Database, shared_client: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a = pair[0]
    with pytest.raises(ZeroDivisionError):
        async with single_db.session(a.org_id) as session:
            backend = (await session.execute(PROBE)).one()[0]
            raise ZeroDivisionError
    assert await backend_and_tenant(shared_client) in ((backend, ""), (backend, None))


async def test_concurrent_clients_of_one_server_connection_never_inherit_a_tenant(
    settings: TenancySettings, pgbouncer: Bouncer, tenants: list[Seeded]
) -> None:
    url = pgbouncer.url(settings.app_url(), single=True)
    clients = [await connect(url, statement_cache_size=0) for _ in range(10)]
    inherited: list[str | None] = []
    backends: set[int] = set()

    async def work(client: asyncpg.Connection, tenant: Seeded) -> None:
        async with client.transaction():
            backend, tenant_at_start = await backend_and_tenant(client)
            backends.add(backend)
            if tenant_at_start:
                inherited.append(tenant_at_start)
            await client.execute(set_local_statement(tenant.org_id))
            emails = {row[0] for row in await client.fetch("SELECT email FROM customers")}
            assert emails == tenant.emails

    try:
        for round_ in range(10):
            await asyncio.gather(
                *(work(c, tenants[(i + round_) % len(tenants)]) for i, c in enumerate(clients))
            )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    assert len(backends) == 1
    assert inherited == []


async def test_a_session_level_set_would_leak_to_the_next_client(
    settings: TenancySettings, pgbouncer: Bouncer, pair: tuple[Seeded, Seeded]
) -> None:
    # Why the library never uses a plain SET: the next client of the server
    # connection inherits it, and with it the tenant's rows.
    url = pgbouncer.url(settings.app_url(), single=True)
    careless = await connect(url, statement_cache_size=0)
    victim = await connect(url, statement_cache_size=0)
    a = pair[0]
    try:
        await careless.execute(f"SET app.org_id = '{a.org_id}'")
        assert (await backend_and_tenant(victim))[1] == str(a.org_id)
        emails = {row[0] for row in await victim.fetch("SELECT email FROM customers")}
        assert emails == a.emails
    finally:
        await victim.execute("RESET app.org_id")
        await asyncio.gather(careless.close(), victim.close())
