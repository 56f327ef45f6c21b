"""The library's tenant tables and outbox on the cluster, for the unit of work and the relay.

``organizations``, ``customers`` and ``outbox_events`` are created from the
library's own models, with its tenant predicate, its policies and its grants,
and laid out by ``tenancy.schema.citus.distribute``. The whole library schema
cannot be migrated onto a coordinator yet (``DistributionRefused``, see the
runbook), hence this hand-built part of it.
"""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy import Connection

from repositories.models import Customer, Organization
from tenancy.events.outbox_table import OutboxEvent
from tenancy.schema.citus import DistributionPlan, distribute, propagate_tenant_setting
from tenancy.schema.tenant_table import TENANT_PREDICATE, TENANT_PRIVILEGES
from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import ROOT_PREDICATE

DBNAME = "tenancy_outbox"
#: Logs in for the units of work: not superuser, not BYPASSRLS, owns nothing.
APP = "citus_outbox_app"
#: Logs in for the relay: BYPASSRLS, privileges on the outbox only (as ``tenancy_relay``).
RELAY = "citus_outbox_relay"

TABLES = (Organization.__table__, Customer.__table__, OutboxEvent.__table__)
POLICIES = (
    ("organizations", ROOT_PREDICATE),
    ("customers", TENANT_PREDICATE),
    ("outbox_events", TENANT_PREDICATE),
)
PRIVILEGES = ", ".join(TENANT_PRIVILEGES)


def lay_out(connection: Connection) -> list[str]:
    """Create the roles and tables with their policies and grants; distribute them."""
    connection.exec_driver_sql(f"CREATE ROLE {APP} LOGIN")
    connection.exec_driver_sql(f"CREATE ROLE {RELAY} LOGIN BYPASSRLS")
    TABLES[0].metadata.create_all(connection, tables=list(TABLES))
    for table, predicate in POLICIES:
        for statement in (
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant_isolation ON {table} USING ({predicate})"
            f" WITH CHECK ({predicate})",
            f"CREATE POLICY tenant_guard ON {table} AS RESTRICTIVE USING ({predicate})"
            f" WITH CHECK ({predicate})",
        ):
            connection.exec_driver_sql(statement)
    # The grants of the library's migrations: the app writes events and never
    # changes them; the relay reads and settles them, across tenants.
    connection.exec_driver_sql(f"GRANT {PRIVILEGES} ON organizations, customers TO {APP}")
    connection.exec_driver_sql(f"GRANT SELECT, INSERT ON outbox_events TO {APP}")
    connection.exec_driver_sql(f"GRANT SELECT, UPDATE, DELETE ON outbox_events TO {RELAY}")
    return propagate_tenant_setting(connection) + distribute(connection, DistributionPlan())


async def fetch(cluster: CitusCluster, query: str, *args: object) -> list[asyncpg.Record]:
    """Run ``query`` as the superuser (inspection only, never for isolation)."""
    connection = await cluster.connect(DBNAME)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def outbox_rows(cluster: CitusCluster, aggregate_ids: list[str]) -> list[asyncpg.Record]:
    """The outbox rows of these aggregates, across tenants, in outbox order."""
    return await fetch(
        cluster,
        "SELECT org_id, id, aggregate_id, event_type, status FROM outbox_events"
        " WHERE aggregate_id = ANY($1::text[]) ORDER BY occurred_at, position",
        aggregate_ids,
    )


async def customer_count(cluster: CitusCluster, customer_id: uuid.UUID) -> int:
    """How many ``customers`` rows have this id, across tenants."""
    rows = await fetch(cluster, "SELECT count(*) FROM customers WHERE id = $1", customer_id)
    return int(rows[0][0])
