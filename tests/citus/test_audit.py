"""`tenancy audit` on a Citus coordinator: the layout is part of the verdict."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.audit.database_audit import AuditReport, audit_connection
from tenancy.audit.isolation_config import IsolationConfig
from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import APP, DBNAME, TENANT_PREDICATE

LAYOUT_CODES = {
    "not-distributed",
    "not-colocated",
    "not-reference",
    "set-not-propagated",
    "definer-owner-cannot-log-in",
}


@pytest.fixture
async def coordinator(cluster: CitusCluster, ready: list[str]) -> AsyncIterator[AsyncConnection]:
    """A superuser connection to the laid-out service database; rolled back afterwards."""
    engine = create_async_engine(cluster.url(DBNAME), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            yield connection
            await connection.rollback()
    finally:
        await engine.dispose()


async def _audit(connection: AsyncConnection) -> AuditReport:
    return await audit_connection(connection, IsolationConfig(app_role=APP))


def _layout(report: AuditReport) -> list[str]:
    return [str(g) for g in report.gaps if g.code in LAYOUT_CODES]


async def test_a_laid_out_coordinator_passes_the_audit(coordinator: AsyncConnection) -> None:
    report = await _audit(coordinator)

    assert [str(g) for g in report.gaps] == []


async def test_a_tenant_table_left_local_is_a_gap(coordinator: AsyncConnection) -> None:
    await coordinator.execute(
        text("CREATE TABLE stray (org_id uuid NOT NULL, id uuid, PRIMARY KEY (org_id, id))")
    )
    for statement in (
        "ALTER TABLE stray ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE stray FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON stray USING ({TENANT_PREDICATE})",
        f"CREATE POLICY tenant_guard ON stray AS RESTRICTIVE USING ({TENANT_PREDICATE})",
    ):
        await coordinator.execute(text(statement))

    report = await _audit(coordinator)

    assert _layout(report) == ["public.stray [not-distributed]: is not distributed by org_id"]


async def test_a_tenant_table_on_its_own_colocation_is_a_gap(coordinator: AsyncConnection) -> None:
    await coordinator.execute(
        text("SELECT update_distributed_table_colocation('note_events', colocate_with => 'none')")
    )

    report = await _audit(coordinator)

    assert _layout(report) == [
        "public.note_events [not-colocated]: is not co-located with public.organizations"
    ]


async def test_set_local_not_reaching_the_workers_is_a_gap(coordinator: AsyncConnection) -> None:
    await coordinator.execute(text(f"ALTER DATABASE {DBNAME} RESET citus.propagate_set_commands"))

    report = await _audit(coordinator)

    assert _layout(report) == [
        "database [set-not-propagated]: citus.propagate_set_commands is not 'local' for the"
        " database or the app role: the workers never see SET LOCAL app.org_id"
    ]


async def test_a_definer_the_app_runs_owned_by_a_role_that_cannot_log_in_is_a_gap(
    coordinator: AsyncConnection,
) -> None:
    for statement in (
        "CREATE ROLE stray_definer NOLOGIN",
        "CREATE FUNCTION stray_lookup() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
        "ALTER FUNCTION stray_lookup() OWNER TO stray_definer",
        f"GRANT EXECUTE ON FUNCTION stray_lookup() TO {APP}",
    ):
        await coordinator.execute(text(statement))

    report = await _audit(coordinator)

    assert _layout(report) == [
        "function stray_lookup() [definer-owner-cannot-log-in]: its owner stray_definer cannot"
        " log in: Citus runs its statements on the workers as stray_definer"
    ]
