"""`tenancy migrate` on a Citus coordinator: the tenant setting reaches every node, and a
schema Citus would refuse is refused before anything changes, every reason named."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.errors import DistributionRefused
from tenancy.schema.citus import distribute, library_distribution_plan
from tenancy.schema.migration import upgrade
from tests.citus.cluster import CitusCluster

#: What still keeps the library's own schema from distributing (see the runbook).
LIBRARY_BLOCKERS = {
    "policy 'member_guard' on users holds a sub-query",
    "policy 'member_read' on users holds a sub-query",
}


DBNAME = "tenancy_library"


async def _fetch(cluster: CitusCluster, query: str) -> list[tuple[object, ...]]:
    connection = await cluster.connect(DBNAME)
    try:
        return [tuple(r) for r in await connection.fetch(query)]
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def refused(cluster: CitusCluster) -> DistributionRefused:
    with pytest.raises(DistributionRefused) as raised:
        upgrade(cluster.create_database(DBNAME))
    return raised.value


def test_migrating_the_library_schema_names_every_blocker(refused: DistributionRefused) -> None:
    assert set(refused.blockers) == LIBRARY_BLOCKERS


def test_a_refused_distribution_leaves_no_revision_and_no_citus_table(
    cluster: CitusCluster, refused: DistributionRefused
) -> None:
    tables = asyncio.run(_fetch(cluster, "SELECT logicalrelid FROM pg_dist_partition"))
    versions = asyncio.run(_fetch(cluster, "SELECT to_regclass('tenancy_alembic_version')"))

    assert (tables, versions) == ([], [(None,)])


def test_migrate_makes_set_local_reach_the_workers_for_the_whole_database(
    cluster: CitusCluster, refused: DistributionRefused
) -> None:
    settings = asyncio.run(
        _fetch(
            cluster,
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d"
            " ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0",
        )
    )

    assert settings == [(["citus.propagate_set_commands=local"],)]


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
