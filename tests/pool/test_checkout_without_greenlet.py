"""Checkout and check-in without a greenlet: taken directly when idle, in a greenlet otherwise.

A unit of work takes an idle pooled connection, and gives one back to a pool
with room for it, by calling SQLAlchemy's synchronous pool directly. Whenever
the pool must reach the driver (connect, recycle, close an overflow
connection) the step runs inside SQLAlchemy's greenlet as before, and the pool
stays consistent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

import tenancy.internals.adapter as adapter
from repositories import PlatformDatabase
from repositories.models import Customer
from tenancy import Database, TenancySettings


@pytest.fixture
def greenlets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the pool steps run inside a greenlet from now on."""
    spawned: list[str] = []
    original = adapter.greenlet_spawn

    async def counting(fn: Callable[[], Any], *args: Any, **kwargs: Any) -> Any:
        spawned.append(getattr(fn, "__name__", repr(fn)))
        return await original(fn, *args, **kwargs)

    monkeypatch.setattr(adapter, "greenlet_spawn", counting)
    return spawned


@pytest.fixture
async def small_pool(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` with one pooled connection and one overflow connection."""
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 1})
    )
    yield database
    await database.dispose()


async def backend_pid(db: Database, org_id: uuid.UUID) -> int:
    """Return the server process of the connection a unit of work gets."""
    async with db.unit_of_work(org_id) as uow:
        driver = await uow.driver()
        return int(await driver.fetchval("SELECT pg_backend_pid()"))


async def live_backends(settings: TenancySettings, pids: set[int]) -> set[int]:
    """Return which of ``pids`` still have a server process, once closes have landed."""
    admin = settings.admin_url().set(drivername="postgresql")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        for _ in range(50):
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE pid = any($1::int[])", list(pids)
            )
            live = {row["pid"] for row in rows}
            if len(live) < len(pids):
                return live
            await asyncio.sleep(0.05)
        return live
    finally:
        await connection.close()


async def test_a_warm_unit_of_work_runs_no_pool_step_in_a_greenlet(
    small_pool: Database, org_a: uuid.UUID, greenlets: list[str]
) -> None:
    await backend_pid(small_pool, org_a)  # the pool's connection exists and is idle
    greenlets.clear()

    async with small_pool.unit_of_work(org_a) as uow:
        added = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@warm.example"))
        await uow.commit()
    async with small_pool.unit_of_work(org_a) as uow:
        assert (await uow.customers.get(added.id)).email == added.email

    assert greenlets == []


async def test_a_unit_of_work_on_an_empty_pool_connects_inside_a_greenlet(
    small_pool: Database, org_a: uuid.UUID, greenlets: list[str]
) -> None:
    await small_pool.engine.dispose()  # no connection left in the pool
    greenlets.clear()

    await backend_pid(small_pool, org_a)

    assert greenlets == ["_open"]


async def test_a_connection_past_its_recycle_age_is_replaced_inside_a_greenlet(
    settings: TenancySettings,
    org_a: uuid.UUID,
    greenlets: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_recycle": 1})
    )
    try:
        first = await backend_pid(db, org_a)
        await asyncio.sleep(1.2)
        greenlets.clear()
        with caplog.at_level(logging.WARNING):
            second = await backend_pid(db, org_a)
    finally:
        await db.dispose()

    assert second != first
    # Tried directly, then done where the pool may await the driver.
    assert greenlets == ["_open"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_an_overflow_connection_given_back_to_a_full_pool_is_closed(
    settings: TenancySettings,
    small_pool: Database,
    org_a: uuid.UUID,
    greenlets: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await backend_pid(small_pool, org_a)
    greenlets.clear()
    with caplog.at_level(logging.WARNING):
        async with (
            small_pool.unit_of_work(org_a) as first,
            small_pool.unit_of_work(org_a) as second,
        ):
            pids = {
                int(await (await uow.driver()).fetchval("SELECT pg_backend_pid()"))
                for uow in (first, second)
            }

    assert len(pids) == 2
    # The overflow connection was opened, then closed, where the driver may be awaited.
    assert greenlets == ["_open", "_check_in"]
    assert len(await live_backends(settings, pids)) == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
