"""The demo's scratch database: created and migrated for the block, dropped whatever happens."""

from __future__ import annotations

import asyncio

import pytest

from tenancy.schema.throwaway_database import scratch_database, scratch_name
from tests.demo.test_demo import SERVER, database_exists


async def test_the_scratch_database_exists_inside_the_block_and_not_after() -> None:
    name = scratch_name("tenancy_scratch_test")

    async with scratch_database(SERVER, name):
        assert await database_exists(name)

    assert not await database_exists(name)


async def test_cancellations_that_land_while_it_is_dropped_do_not_stop_the_drop() -> None:
    # Ctrl-C or a timeout lands wherever the task is, the cleanup included; an anyio
    # cancel scope even cancels every await of it. Here every await of the drop is.
    name = scratch_name("tenancy_scratch_test")
    leaving = asyncio.Event()

    async def use() -> None:
        async with scratch_database(SERVER, name):
            leaving.set()

    task = asyncio.create_task(use())
    await leaving.wait()
    cancels = 0
    while not task.done():
        cancels += task.cancel()
        await asyncio.sleep(0.001)

    assert cancels > 1
    assert task.cancelled()
    assert not await database_exists(name)


async def test_a_cancelled_block_still_drops_the_database_and_stays_cancelled() -> None:
    name = scratch_name("tenancy_scratch_test")
    entered = asyncio.Event()

    async def use() -> None:
        async with scratch_database(SERVER, name):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(use())
    await entered.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await database_exists(name)
