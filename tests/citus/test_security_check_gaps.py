"""`tenancy security-check` finds a gap on Citus too: a distributed table whose permissive
policy ORs in ``true``, beside a sound one, and leaves no probe row behind."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.schema.citus import DistributionPlan, distribute, propagate_tenant_setting
from tenancy.schema.tenant_table import TENANT_PREDICATE
from tenancy.testing.security_check import EXIT_FAILURES
from tests.citus.cluster import CitusCluster
from tests.citus.security_support import rows_left, security_check

DBNAME = "tenancy_security_gaps"
APP = "citus_gaps_app"
GUARD = f"AS RESTRICTIVE USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
SCHEMA = (
    f"CREATE ROLE {APP} LOGIN",
    "CREATE TABLE organizations (id uuid PRIMARY KEY)",
    *(
        f"CREATE TABLE {table} (org_id uuid NOT NULL REFERENCES organizations (id),"
        " id uuid NOT NULL, body text NOT NULL, PRIMARY KEY (org_id, id))"
        for table in ("notes", "leaky_notes")
    ),
    *(
        statement
        for table in ("notes", "leaky_notes")
        for statement in (
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}",
        )
    ),
    f"CREATE POLICY tenant_isolation ON notes USING ({TENANT_PREDICATE})",
    f"CREATE POLICY tenant_guard ON notes {GUARD}",
    # The gap: a permissive policy that ORs in true, and no restrictive guard.
    f"CREATE POLICY tenant_isolation ON leaky_notes USING ({TENANT_PREDICATE} OR true)",
)
EXPECTED_GAPS = {
    "public.leaky_notes::restrictive_guard",
    "public.leaky_notes::permissive_is_tenant_only",
    "public.leaky_notes::fail_closed",
    "public.leaky_notes::cross_tenant_select",
    "public.leaky_notes::cross_tenant_update",
    "public.leaky_notes::cross_tenant_delete",
    "public.leaky_notes::foreign_insert",
}


def _lay_out(connection: Connection) -> None:
    for statement in SCHEMA:
        connection.exec_driver_sql(statement)
    propagate_tenant_setting(connection)
    distribute(connection, DistributionPlan())


@pytest.fixture(scope="module")
def gapped(cluster: CitusCluster) -> URL:
    """A coordinator database with one sound and one gapped distributed tenant table."""
    url = cluster.create_database(DBNAME)

    async def create() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_lay_out)
        finally:
            await engine.dispose()

    asyncio.run(create())
    return url


def test_the_gapped_table_fails_exactly_its_checks(
    capsys: pytest.CaptureFixture[str], gapped: URL
) -> None:
    code, output = security_check(capsys, gapped, "--app-role", APP)
    failed = {
        line.split("] ", 1)[1].split(": ", 1)[0]
        for line in output.splitlines()
        if line.startswith("FAILED")
    }

    assert code == EXIT_FAILURES
    assert failed == EXPECTED_GAPS


def test_finding_the_gaps_leaves_no_probe_row(
    capsys: pytest.CaptureFixture[str], cluster: CitusCluster, gapped: URL
) -> None:
    security_check(capsys, gapped, "--app-role", APP)

    assert rows_left(cluster, gapped) == {}
