"""A service's schema on the cluster (a root and two tenant tables with the library's
bare tenant predicate) and the ways the scale-out tests use it as the app role."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy import Connection

from tenancy.schema.citus import DistributionPlan, distribute, propagate_tenant_setting
from tenancy.schema.tenant_table import TENANT_PREDICATE
from tests.citus.cluster import CitusCluster

DBNAME = "tenancy_ready"
APP = "citus_app"
ROOT_PREDICATE = TENANT_PREDICATE.replace("org_id =", "id =", 1)

SCHEMA = [
    f"CREATE ROLE {APP} LOGIN",
    "CREATE TABLE organizations (id uuid PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE notes (org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " id uuid NOT NULL, body text NOT NULL, PRIMARY KEY (org_id, id))",
    "CREATE TABLE note_events (org_id uuid NOT NULL REFERENCES organizations (id),"
    " id uuid NOT NULL, note_id uuid NOT NULL, PRIMARY KEY (org_id, id),"
    " FOREIGN KEY (org_id, note_id) REFERENCES notes (org_id, id))",
]
for _table, _predicate in (
    ("organizations", ROOT_PREDICATE),
    ("notes", TENANT_PREDICATE),
    ("note_events", TENANT_PREDICATE),
):
    SCHEMA += [
        f"ALTER TABLE {_table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {_table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {_table} USING ({_predicate})"
        f" WITH CHECK ({_predicate})",
        f"CREATE POLICY tenant_guard ON {_table} AS RESTRICTIVE USING ({_predicate})"
        f" WITH CHECK ({_predicate})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_table} TO {APP}",
    ]


def lay_out(connection: Connection) -> list[str]:
    for statement in SCHEMA:
        connection.exec_driver_sql(statement)
    return propagate_tenant_setting(connection) + distribute(connection, DistributionPlan())


async def superuser(cluster: CitusCluster, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await cluster.connect(DBNAME)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def in_tenant(
    pool: asyncpg.Pool, org_id: uuid.UUID | None, query: str, *args: object
) -> list[asyncpg.Record]:
    async with pool.acquire() as connection, connection.transaction():
        if org_id is not None:
            # SET takes no parameters; the id is a parsed UUID.
            await connection.execute(f"SET LOCAL app.org_id = '{uuid.UUID(str(org_id))}'")
        return list(await connection.fetch(query, *args))


async def new_tenant(pool: asyncpg.Pool) -> uuid.UUID:
    org_id = uuid.uuid4()
    await in_tenant(pool, org_id, "INSERT INTO organizations VALUES ($1, 'org')", org_id)
    return org_id


async def add_note(pool: asyncpg.Pool, org_id: uuid.UUID) -> uuid.UUID:
    note_id, event_id = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(f"SET LOCAL app.org_id = '{org_id}'")
        await connection.execute("INSERT INTO notes VALUES ($1, $2, 'n')", org_id, note_id)
        await connection.execute(
            "INSERT INTO note_events VALUES ($1, $2, $3)", org_id, event_id, note_id
        )
    return note_id
