"""A frozen server (SIGSTOP): units of work fail typed within the client-side time bounds.

Settings: connect_timeout=1 s, command_timeout=1 s, pool_timeout=2 s. Only a
generous bound is asserted (the machine is noisy); the measured times are printed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tenancy import Database, DatabaseUnavailable
from tests.faults.conftest import OpenDatabase
from tests.faults.server import FaultServer
from tests.faults.support import FaultDatabase, new_customers, new_organization

#: What the test tolerates: several times the configured bounds, well below "forever".
BOUND_SECONDS = 10.0
TIMEOUTS = {"connect_timeout": 1.0, "command_timeout": 1.0, "pool_timeout": 2.0}


@pytest.fixture
async def org_id(open_database: OpenDatabase) -> uuid.UUID:
    setup: Database = await open_database()
    org = await new_organization(setup)
    await new_customers(setup, org, 1)
    return org


@pytest.fixture
async def frozen(fault_db: FaultDatabase) -> AsyncIterator[FaultServer]:
    """Freezes the server when entered by the test; thaws it whatever happens."""
    server = fault_db.server
    try:
        yield server
    finally:
        server.thaw()


async def time_unit_of_work(db: Database, org: uuid.UUID) -> tuple[float, Exception | None]:
    """Run a reading unit of work; return how long it took and what it raised."""
    started = time.monotonic()
    try:
        # The test's own guard, so that a missing bound fails instead of hanging.
        async with asyncio.timeout(BOUND_SECONDS), db.unit_of_work(org) as uow:
            await uow.customers.count()
    except Exception as exc:  # classified by the caller
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def assert_fails_unavailable_in_bound(db: Database, org: uuid.UUID, label: str) -> None:
    elapsed, error = await time_unit_of_work(db, org)
    print(f"\nfrozen server, {label}: {type(error).__name__} after {elapsed:.2f} s")
    assert not isinstance(error, TimeoutError), f"no bound: still waiting after {elapsed:.1f} s"
    assert isinstance(error, DatabaseUnavailable), f"expected DatabaseUnavailable, got {error!r}"
    assert elapsed < BOUND_SECONDS


async def assert_next_unit_of_work_works(db: Database, org: uuid.UUID) -> None:
    elapsed, error = await time_unit_of_work(db, org)
    print(f"after thaw: {type(error).__name__ if error else 'ok'} after {elapsed:.2f} s")
    assert error is None, f"the unit of work after the thaw failed: {error!r}"


async def test_a_unit_of_work_on_a_pooled_connection_fails_within_the_bound_when_frozen(
    open_database: OpenDatabase, org_id: uuid.UUID, frozen: FaultServer
) -> None:
    db: Database = await open_database(pool_size=1, max_overflow=0, **TIMEOUTS)
    await assert_next_unit_of_work_works(db, org_id)  # the pool now holds an open connection
    frozen.freeze()
    await assert_fails_unavailable_in_bound(db, org_id, "pooled connection")


async def test_a_unit_of_work_needing_a_new_connection_fails_within_the_bound_when_frozen(
    open_database: OpenDatabase, org_id: uuid.UUID, frozen: FaultServer
) -> None:
    db: Database = await open_database(pool_size=1, max_overflow=0, **TIMEOUTS)
    await db.dispose()  # an empty pool: the next checkout must connect
    frozen.freeze()
    await assert_fails_unavailable_in_bound(db, org_id, "new connection")


async def test_a_unit_of_work_after_a_thaw_works(
    open_database: OpenDatabase, org_id: uuid.UUID, frozen: FaultServer
) -> None:
    db: Database = await open_database(pool_size=1, max_overflow=0, **TIMEOUTS)
    await assert_next_unit_of_work_works(db, org_id)
    frozen.freeze()
    await time_unit_of_work(db, org_id)  # fails, one way or another
    frozen.thaw()
    await assert_next_unit_of_work_works(db, org_id)
