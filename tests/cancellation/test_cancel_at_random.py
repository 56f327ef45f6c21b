"""Tenant B's unit of work, run as a real task, interrupted at random sub-millisecond moments.

These complement the enumerated await points: a real ``asyncio.Task`` is
cancelled by the event loop's timer wherever it happens to be, by a plain
``cancel()``, by ``asyncio.timeout``, or by cancellations repeated while it
cleans up (as anyio cancel scopes do). A runs right after on the same
one-connection pool and must see exactly its own rows; every commit that
returned must persist.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from tenancy import Database
from tests.cancellation.campaign import interrupt_tasks
from tests.cancellation.tenants import Tenant, Witness
from tests.cancellation.workloads import WORKLOADS, Workload

pytestmark = pytest.mark.security

#: Attempts per workload: about 200 per kind of interruption over the three workloads.
ATTEMPTS = 70
#: Interruptions land within this many seconds of the task's start.
WINDOW_S = 0.002
#: Cancellations sent after the first one, one per event-loop iteration.
REPEATS = 10


def _cancel_at_random(task: asyncio.Task[None]) -> str:
    delay = random.uniform(0, WINDOW_S)
    asyncio.get_running_loop().call_later(delay, task.cancel)
    return f" cancelled after {delay * 1e6:.0f} us"


def _cancel_repeatedly(task: asyncio.Task[None]) -> str:
    loop = asyncio.get_running_loop()

    def cancel(remaining: int) -> None:
        if not task.done():
            task.cancel()
            if remaining:
                loop.call_soon(cancel, remaining - 1)

    delay = random.uniform(0, WINDOW_S)
    loop.call_later(delay, cancel, REPEATS)
    return f" cancelled {REPEATS + 1} times from {delay * 1e6:.0f} us"


async def _within_random_timeout(coro: Coroutine[Any, Any, None]) -> None:
    async with asyncio.timeout(random.uniform(0, WINDOW_S)):
        await coro


@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_at_a_random_moment(
    one_connection_db: Database, witness: Witness, tenant_b: Tenant, workload: Workload
) -> None:
    tally = await interrupt_tasks(
        one_connection_db,
        witness,
        tenant_b,
        workload,
        attempts=ATTEMPTS,
        interrupt=_cancel_at_random,
    )

    assert tally.clean, tally.report()


@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_times_out(
    one_connection_db: Database, witness: Witness, tenant_b: Tenant, workload: Workload
) -> None:
    tally = await interrupt_tasks(
        one_connection_db,
        witness,
        tenant_b,
        workload,
        attempts=ATTEMPTS,
        wrap=_within_random_timeout,
    )

    assert tally.clean, tally.report()


@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_again_while_it_cleans_up(
    one_connection_db: Database, witness: Witness, tenant_b: Tenant, workload: Workload
) -> None:
    tally = await interrupt_tasks(
        one_connection_db,
        witness,
        tenant_b,
        workload,
        attempts=ATTEMPTS,
        interrupt=_cancel_repeatedly,
    )

    assert tally.clean, tally.report()
