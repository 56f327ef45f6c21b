"""After a drain, the statistics say nothing is pending: the relay's statements stay linear.

A queue table is analyzed when it happens to be, often right after a backlog
drained; until the next ANALYZE (which a backlog on a big table may never
trigger) the planner believes the partial index on pending rows is empty. The
next backlog must still be claimed and settled at the cost of its batches, not
of every batch times the backlog (measured with 50,000 pending rows: a claim
took 9.6 s instead of 40 ms).

Each test runs on its own copy of the outbox (``scratch_outbox``), inside a
transaction it rolls back: the statistics are the test's to set.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.relay.claims import (
    _CLAIM,
    _CLAIM_LOCK,
    _FAIL,
    _MARK_PUBLISHED,
    _RELEASE,
    CLAIM_LOCK_KEY,
)
from tests.events.scratch_outbox import add_rows, copy_outbox, plan_of, schema_name, visited

PUBLISHED = 20_000
PENDING = 2_000
BATCH = 100
RELAY_ID = "stale-statistics"


async def rows_visited(
    connection: AsyncConnection, statement: TextClause, params: dict[str, Any]
) -> float:
    """Run ``statement`` under EXPLAIN ANALYZE (it takes effect) and count its rows visited."""
    explain = text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.text}")
    return visited(plan_of((await connection.execute(explain, params)).scalar_one()))


@pytest.fixture
async def drained_outbox(admin_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to an outbox analyzed when all was published, then given a backlog."""
    schema = schema_name()
    org_id = uuid.uuid4()
    async with admin_engine.connect() as connection:
        transaction = await connection.begin()
        await copy_outbox(connection, schema)
        await connection.execute(text(f"SET LOCAL search_path = {schema}"))
        await add_rows(connection, schema, org_id, "published", PUBLISHED)
        await connection.execute(text("ANALYZE outbox_events"))
        await add_rows(connection, schema, org_id, "pending", PENDING)
        try:
            yield connection
        finally:
            await transaction.rollback()


async def claim_keys(connection: AsyncConnection) -> dict[str, Any]:
    """Claim a batch as the relay does, and return its keys for the settle statements."""
    await connection.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
    claimed = await connection.execute(
        _CLAIM, {"limit": BATCH, "relay_id": RELAY_ID, "lease": 60.0}
    )
    rows = claimed.all()
    assert len(rows) == BATCH
    return {"org_ids": [r.org_id for r in rows], "ids": [r.id for r in rows]}


async def test_a_claim_after_a_drain_visits_the_backlog_once_not_once_per_candidate(
    drained_outbox: AsyncConnection,
) -> None:
    await drained_outbox.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
    params = {"limit": BATCH, "relay_id": RELAY_ID, "lease": 60.0}

    rows = await rows_visited(drained_outbox, _CLAIM, params)

    # Finding the oldest claimable rows reads the backlog once (the pending index
    # is on available_at, not on the claim's order); the batch is then updated by
    # key. Joining the batch against the backlog would be PENDING * BATCH.
    assert rows < PENDING + 20 * BATCH


async def test_marking_a_batch_published_after_a_drain_visits_only_its_rows(
    drained_outbox: AsyncConnection,
) -> None:
    keys = await claim_keys(drained_outbox)

    rows = await rows_visited(drained_outbox, _MARK_PUBLISHED, keys)

    assert rows < 10 * BATCH


async def test_releasing_a_batch_after_a_drain_visits_only_its_rows(
    drained_outbox: AsyncConnection,
) -> None:
    keys = await claim_keys(drained_outbox)

    rows = await rows_visited(drained_outbox, _RELEASE, {**keys, "relay_id": RELAY_ID})

    assert rows < 10 * BATCH


async def test_failing_a_batch_after_a_drain_visits_only_its_rows(
    drained_outbox: AsyncConnection,
) -> None:
    keys = await claim_keys(drained_outbox)
    params = {
        **keys,
        "relay_id": RELAY_ID,
        "attempts": [1] * BATCH,
        "statuses": ["pending"] * BATCH,
        "errors": ["broker said no"] * BATCH,
        "delays": [1.0] * BATCH,
    }

    rows = await rows_visited(drained_outbox, _FAIL, params)

    assert rows < 10 * BATCH
