"""Tenant tables distributed by their tenant on a real cluster: isolation, fail-closed,
and concurrency.

The schema is a service's (a root and two tenant tables with the library's bare
tenant predicate), laid out by ``tenancy.schema.citus.distribute``; every check
runs as a login role that is neither superuser, BYPASSRLS nor owner, through
``BEGIN; SET LOCAL app.org_id``, with the tenant setting propagated by the
database-level setting the step applies.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.schema.citus import DistributionPlan, distribute, propagate_tenant_setting
from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import DBNAME, add_note, in_tenant, new_tenant, superuser


def test_every_tenant_table_is_distributed_by_its_tenant_beside_the_root(
    cluster: CitusCluster, ready: list[str]
) -> None:
    rows = asyncio.run(
        superuser(
            cluster,
            "SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey),"
            " colocationid FROM pg_dist_partition ORDER BY 1",
        )
    )

    layout = {r[0]: r[1] for r in rows}
    assert layout == {"note_events": "org_id", "notes": "org_id", "organizations": "id"}
    assert len({r[2] for r in rows}) == 1
    assert ready == [
        "citus.propagate_set_commands = 'local' for database tenancy_ready",
        "distributed organizations by id",
        "distributed note_events by org_id",
        "distributed notes by org_id",
    ]


def test_laying_out_again_changes_nothing(cluster: CitusCluster, ready: list[str]) -> None:
    async def again() -> list[str]:
        engine = create_async_engine(cluster.url(DBNAME), poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(
                    lambda c: propagate_tenant_setting(c) + distribute(c, DistributionPlan())
                )
        finally:
            await engine.dispose()

    assert asyncio.run(again()) == []


async def test_each_tenant_reads_only_its_rows_from_every_node(
    cluster: CitusCluster, app_pool: asyncpg.Pool
) -> None:
    tenants = [await new_tenant(app_pool) for _ in range(12)]
    written = {t: {await add_note(app_pool, t) for _ in range(3)} for t in tenants}

    seen = {
        t: {r["id"] for r in await in_tenant(app_pool, t, "SELECT id FROM notes")} for t in tenants
    }
    nodes = await superuser(
        cluster,
        "SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'notes'::regclass"
        " AND shardid IN (SELECT get_shard_id_for_distribution_column('notes', t)"
        " FROM unnest($1::uuid[]) AS t)",
        tenants,
    )

    assert seen == written
    assert len(nodes) == 2  # the tenants' rows really are spread over both workers


async def test_no_tenant_sees_nothing_and_writes_nothing(app_pool: asyncpg.Pool) -> None:
    org_id = await new_tenant(app_pool)
    await add_note(app_pool, org_id)

    assert await in_tenant(app_pool, None, "SELECT id FROM notes") == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(
            app_pool, None, "INSERT INTO notes VALUES ($1, $2, 'x')", org_id, uuid.uuid4()
        )


async def test_writing_into_another_tenant_is_refused(app_pool: asyncpg.Pool) -> None:
    mine, theirs = await new_tenant(app_pool), await new_tenant(app_pool)

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(
            app_pool, mine, "INSERT INTO notes VALUES ($1, $2, 'x')", theirs, uuid.uuid4()
        )


async def test_a_reference_to_another_tenants_row_is_refused(app_pool: asyncpg.Pool) -> None:
    mine, theirs = await new_tenant(app_pool), await new_tenant(app_pool)
    their_note = await add_note(app_pool, theirs)

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await in_tenant(
            app_pool,
            mine,
            "INSERT INTO note_events VALUES ($1, $2, $3)",
            mine,
            uuid.uuid4(),
            their_note,
        )


async def test_hundreds_of_concurrent_transactions_over_many_tenants_stay_isolated(
    app_pool: asyncpg.Pool,
) -> None:
    tenants = [await new_tenant(app_pool) for _ in range(20)]
    plan = [random.choice(tenants) for _ in range(300)]

    async def write_then_read(org_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, set[uuid.UUID]]:
        note = await add_note(app_pool, org_id)
        rows = await in_tenant(app_pool, org_id, "SELECT org_id FROM notes")
        return org_id, note, {r["org_id"] for r in rows}

    results = await asyncio.gather(*(write_then_read(t) for t in plan))

    assert all(seen == {org_id} for org_id, _, seen in results)
    counts = Counter(org_id for org_id, _, _ in results)
    for org_id in tenants:
        rows = await in_tenant(app_pool, org_id, "SELECT count(*) FROM notes")
        assert rows[0][0] == counts[org_id]
