"""Moving a tenant while it writes: isolated to its own shard, then that shard moved to the
other worker, with units of work for it and for others committing all along. Every
acknowledged commit is there exactly once afterwards, and isolation holds."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import asyncpg

from tests.citus.cluster import CitusCluster
from tests.citus.service_schema import DBNAME, add_note, in_tenant, new_tenant, superuser

#: Errors a writer may meet while its shard is locked or moved: retried, as a service would.
TRANSIENT = (asyncpg.PostgresConnectionError, asyncpg.TransactionRollbackError, OSError)


async def _writer(
    pool: asyncpg.Pool,
    org_id: uuid.UUID,
    stop: asyncio.Event,
    acknowledged: list[uuid.UUID],
    progress: asyncio.Condition,
) -> int:
    failures = 0
    while not stop.is_set():
        try:
            acknowledged.append(await add_note(pool, org_id))
        except TRANSIENT:
            failures += 1
        async with progress:
            progress.notify_all()
    return failures


async def _until(progress: asyncio.Condition, condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60), progress:
        await progress.wait_for(condition)


async def test_a_tenant_moved_while_writing_keeps_every_commit_exactly_once(
    cluster: CitusCluster, app_pool: asyncpg.Pool
) -> None:
    big, *others = [await new_tenant(app_pool) for _ in range(4)]
    for _ in range(20):
        await add_note(app_pool, big)
    before = {r["id"] for r in await in_tenant(app_pool, big, "SELECT id FROM notes")}
    stop, progress = asyncio.Event(), asyncio.Condition()
    acknowledged: dict[uuid.UUID, list[uuid.UUID]] = {t: [] for t in [big, *others]}
    writers = [
        asyncio.create_task(_writer(app_pool, t, stop, acknowledged[t], progress))
        for t in [big, big, *others]
    ]
    # Writes are in flight when the move starts, and go on after it.
    await _until(progress, lambda: all(len(ids) >= 5 for ids in acknowledged.values()))
    shard, source, target = await cluster.move_tenant(DBNAME, "notes", big)
    after_move = len(acknowledged[big])
    await _until(progress, lambda: len(acknowledged[big]) >= after_move + 5)
    stop.set()
    await asyncio.gather(*writers)

    placed = await superuser(cluster, "SELECT nodeport FROM citus_shards WHERE shardid = $1", shard)
    assert [r["nodeport"] for r in placed] == [target] != [source]
    for org_id, ids in acknowledged.items():
        stored = Counter(
            r["id"]
            for r in await superuser(cluster, "SELECT id FROM notes WHERE org_id = $1", org_id)
        )
        assert all(stored[i] == 1 for i in ids), "an acknowledged commit is missing or doubled"
        seen = await in_tenant(app_pool, org_id, "SELECT DISTINCT org_id FROM notes")
        assert [r["org_id"] for r in seen] == [org_id]
    mine = {r["id"] for r in await in_tenant(app_pool, big, "SELECT id FROM notes")}
    assert before | set(acknowledged[big]) <= mine
