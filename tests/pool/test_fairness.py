"""Pool fairness: tasks in tight loops on a small pool are served in turn, none starves.

Six tasks share a pool of two connections. Each opens a unit of work, reads
once and leaves, as fast as it can, for a fixed time. A pool that lets the
returning task take its connection straight back serves two tasks and times the
others out; served in order, every task gets about the same share.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from repositories import PlatformDatabase
from tenancy import Database, DatabaseUnavailable, TenancySettings

TASKS = 6
DURATION_S = 3.0
#: Generous: with waiters served in order nobody waits more than a few units of work.
POOL_TIMEOUT_S = 2.0
#: Most successes of one task over fewest: fair service keeps it near 1.
MAX_RATIO = 3.0


@dataclass
class Share:
    """What one looping task got from the pool."""

    successes: int = 0
    pool_timeouts: int = 0


@pytest.fixture
async def two_connection_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` whose pool holds two connections (size 2, no overflow)."""
    database = await PlatformDatabase.connect(
        settings.model_copy(
            update={"pool_size": 2, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT_S}
        )
    )
    yield database
    await database.dispose()


async def _loop(db: Database, org_id: uuid.UUID, until: float, share: Share) -> None:
    while time.monotonic() < until:
        try:
            async with db.unit_of_work(org_id) as uow:
                await uow.customers.get_or_none(uuid.uuid4())
        except DatabaseUnavailable as exc:
            if not isinstance(exc.__cause__, PoolTimeout):
                raise
            share.pool_timeouts += 1
        else:
            share.successes += 1


async def test_tasks_in_tight_loops_on_a_small_pool_are_served_in_turn(
    two_connection_db: Database, org_a: uuid.UUID
) -> None:
    shares = [Share() for _ in range(TASKS)]
    until = time.monotonic() + DURATION_S

    await asyncio.gather(*(_loop(two_connection_db, org_a, until, share) for share in shares))

    successes = [share.successes for share in shares]
    timeouts = [share.pool_timeouts for share in shares]
    ratio = max(successes) / max(min(successes), 1)
    print(f"successes per task {successes}, ratio {ratio:.2f}, pool timeouts {timeouts}")
    assert timeouts == [0] * TASKS, f"pool timeouts per task {timeouts}; successes {successes}"
    assert ratio < MAX_RATIO, f"most/fewest successes {ratio:.1f}: {successes}"
