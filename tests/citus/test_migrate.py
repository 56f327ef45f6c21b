"""`tenancy migrate` on a Citus coordinator: the library's schema laid out for scale-out,
the tenant setting forwarded to every node, the audit passing; a schema Citus would
refuse is refused before anything changes, every reason named."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy import TenancySettings
from tenancy.audit.database_audit import audit_database
from tenancy.errors import DistributionRefused
from tenancy.schema.citus import (
    LIBRARY_REFERENCE_TABLES,
    DistributionPlan,
    distribute,
    library_distribution_plan,
)
from tenancy.schema.migration import upgrade
from tests.citus.cluster import CitusCluster
from tests.citus.conftest import library_database

DBNAME = "tenancy_library"
LOOKUP_FOREIGN_KEYS = {
    "fk_invitation_tokens_org_id_organizations",
    "fk_payment_link_tokens_org_id_organizations",
    "fk_wallet_address_holders_org_id_organizations",
    "fk_wallet_addresses_org_id_organizations",
}


@pytest.fixture(scope="module")
def migrated(cluster: CitusCluster) -> list[str]:
    """The library migrated on a fresh coordinator database; what the migration reported."""
    lines: list[str] = []
    upgrade(cluster.create_database(DBNAME), report=lines.append)
    return lines


async def _fetch(cluster: CitusCluster, query: str) -> list[tuple[object, ...]]:
    connection = await cluster.connect(DBNAME)
    try:
        return [tuple(r) for r in await connection.fetch(query)]
    finally:
        await connection.close()


def _layout(cluster: CitusCluster) -> dict[str, tuple[object, ...]]:
    rows = asyncio.run(
        _fetch(
            cluster,
            "SELECT logicalrelid::text, partmethod::text,"
            " CASE WHEN partkey IS NOT NULL"
            " THEN column_to_column_name(logicalrelid, partkey) END, colocationid"
            " FROM pg_dist_partition",
        )
    )
    return {str(r[0]): r[1:] for r in rows}


def test_every_tenant_table_is_distributed_by_org_id_beside_organizations(
    cluster: CitusCluster, migrated: list[str]
) -> None:
    layout = _layout(cluster)
    _, _, root_colocation = layout["organizations"]
    distributed = {t: p for t, p in layout.items() if p[0] == "h"}

    assert layout["organizations"][:2] == ("h", "id")
    assert {t for t, (_, column, _) in distributed.items() if column == "org_id"} == {
        "agents",
        "customers",
        "memberships",
        "outbox_events",
        "payment_links",
        "payment_methods",
        "payment_orders",
        "prices",
        "products",
        "wallet_transactions",
        "wallets",
    }
    assert {c for _, _, c in distributed.values()} == {root_colocation}


def test_global_tables_and_key_lookups_are_reference_tables(
    cluster: CitusCluster, migrated: list[str]
) -> None:
    layout = _layout(cluster)

    assert {t for t, (method, _, _) in layout.items() if method == "n"} == set(
        LIBRARY_REFERENCE_TABLES
    )


def test_the_lookups_lose_only_their_foreign_key_to_organizations(migrated: list[str]) -> None:
    dropped = {line.split()[3] for line in migrated if line.startswith("dropped foreign key")}

    assert dropped == LOOKUP_FOREIGN_KEYS


def test_migrating_again_changes_nothing(cluster: CitusCluster, migrated: list[str]) -> None:
    again: list[str] = []
    upgrade(cluster.url(DBNAME), report=again.append)

    layout_words = ("distributed", "reference", "dropped", "citus.")
    assert [line for line in again if line.startswith(layout_words)] == []


def test_migrate_makes_set_local_reach_the_workers_for_the_whole_database(
    cluster: CitusCluster, migrated: list[str]
) -> None:
    settings = asyncio.run(
        _fetch(
            cluster,
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d"
            " ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0",
        )
    )

    assert settings == [(["citus.propagate_set_commands=local"],)]


def test_the_audit_passes_on_the_migrated_coordinator(
    cluster: CitusCluster, migrated: list[str]
) -> None:
    admin = cluster.url(DBNAME).render_as_string(hide_password=False)
    report = asyncio.run(audit_database(TenancySettings(admin_database_url=admin)))

    assert [str(g) for g in report.gaps] == []
    assert not report.checked_nothing


@pytest.fixture
async def library_db(cluster: CitusCluster, migrated: list[str]) -> AsyncIterator[PlatformDatabase]:
    """The library's unit of work on the coordinator, as the app role."""
    async with library_database(cluster, DBNAME) as database:
        yield database


async def _organization(db: PlatformDatabase) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name="org"))
    return org_id


async def test_the_unit_of_work_writes_a_row_and_its_event_on_the_coordinator(
    cluster: CitusCluster, library_db: PlatformDatabase
) -> None:
    mine, theirs = await _organization(library_db), await _organization(library_db)

    async with library_db.unit_of_work(mine) as uow:
        customer = await uow.customers.add(Customer(email="a@example.com", name="A"))
        await uow.commit()

    async with library_db.unit_of_work(mine) as uow:
        assert [c.id for c in await uow.customers.list()] == [customer.id]
    async with library_db.unit_of_work(theirs) as uow:
        assert await uow.customers.list() == []
    events = await _fetch(
        cluster, f"SELECT org_id FROM outbox_events WHERE aggregate_id = '{customer.id}'"
    )
    assert events == [(mine,)]


def _refused_schema(connection: Connection) -> None:
    wrapped = "org_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid)"
    for statement in (
        "CREATE TABLE organizations (id uuid PRIMARY KEY)",
        "CREATE TABLE leaky (org_id uuid NOT NULL REFERENCES organizations (id),"
        " id uuid NOT NULL, token text UNIQUE, PRIMARY KEY (org_id, id))",
        "ALTER TABLE leaky ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON leaky USING ({wrapped})",
    ):
        connection.exec_driver_sql(statement)


async def test_a_schema_citus_would_refuse_is_refused_naming_every_blocker(
    cluster: CitusCluster,
) -> None:
    url: URL = await asyncio.to_thread(cluster.create_database, "tenancy_refused")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_refused_schema)
            with pytest.raises(DistributionRefused) as refused:
                await connection.run_sync(lambda c: distribute(c, DistributionPlan()))
            placed = await connection.scalar(text("SELECT count(*) FROM pg_dist_partition"))
    finally:
        await engine.dispose()

    assert refused.value.blockers == [
        "policy 'tenant_isolation' on leaky holds a sub-query",
        "unique key 'leaky_token_key' on leaky leaves out the tenant column",
    ]
    assert placed == 0


async def test_distribution_is_a_no_op_on_plain_postgres(admin_url: URL) -> None:
    engine = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            done = await connection.run_sync(
                lambda sync: distribute(sync, library_distribution_plan(sync))
            )
            extension = await connection.scalar(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
            )
    finally:
        await engine.dispose()

    assert (done, extension) == ([], 0)
