"""A backend terminated at each phase of a unit of work: typed error, nothing partial, clean reuse.

Each ``Database`` here has a pool of one, so the unit of work after the fault
gets the replacement of the very connection that was lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tenancy import Database, DatabaseUnavailable, TenancyError
from tests.faults.conftest import OpenDatabase
from tests.faults.support import FaultDatabase, customer, new_customers, new_organization

Kill = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Tenants:
    """Two organizations with committed customers, and a way to kill the pool's backend."""

    db: Database
    a: uuid.UUID
    a_customers: list[uuid.UUID]
    b: uuid.UUID
    kill: Kill


@pytest.fixture
async def tenants(open_database: OpenDatabase, fault_db: FaultDatabase) -> Tenants:
    db: Database = await open_database(pool_size=1, max_overflow=0)
    org_a, org_b = await new_organization(db, "A"), await new_organization(db, "B")
    a_customers = await new_customers(db, org_a, 2)
    await new_customers(db, org_b, 3)

    async def kill() -> None:
        pids = await fault_db.server.terminate_backends(fault_db.name, db.settings.application_name)
        assert len(pids) == 1, f"expected the pool's one backend, terminated {pids}"

    return Tenants(db, org_a, a_customers, org_b, kill)


async def unit_of_work_killed_at(tenants: Tenants, phase: str, ids: list[uuid.UUID]) -> None:
    """Run tenant B's unit of work, terminating its backend at ``phase``; ``ids`` gets its rows."""
    async with tenants.db.unit_of_work(tenants.b) as uow:
        if phase == "after checkout":  # no statement sent yet
            await tenants.kill()
        elif phase == "after begin":  # BEGIN, SET LOCAL and one read have run
            await uow.customers.count()
            await tenants.kill()
        first = customer()
        ids.append(first.id)
        await uow.customers.add(first)
        if phase == "after an insert":
            await tenants.kill()
            second = customer()
            ids.append(second.id)
            await uow.customers.add(second)
        elif phase == "before commit":
            await tenants.kill()
        await uow.commit()


@pytest.mark.parametrize("phase", ["after begin", "after an insert", "before commit"])
async def test_a_backend_terminated_mid_transaction_raises_database_unavailable(
    tenants: Tenants, phase: str, fault_db: FaultDatabase
) -> None:
    ids: list[uuid.UUID] = []
    with pytest.raises(DatabaseUnavailable):
        await unit_of_work_killed_at(tenants, phase, ids)
    assert await fault_db.customer_counts(ids) == {}, "part of a lost transaction is visible"
    assert await fault_db.outbox_counts(ids) == {}, "an event of a lost transaction is visible"


async def test_a_backend_terminated_before_any_statement_fails_typed_or_commits_whole(
    tenants: Tenants, fault_db: FaultDatabase
) -> None:
    # Nothing was sent on the dead connection yet: replacing it is allowed, so the
    # commit may succeed; either way the caller's answer matches the database.
    ids: list[uuid.UUID] = []
    try:
        await unit_of_work_killed_at(tenants, "after checkout", ids)
    except DatabaseUnavailable:
        expected = {}
    else:
        expected = dict.fromkeys(ids, 1)
    assert await fault_db.customer_counts(ids) == expected
    assert await fault_db.outbox_counts(ids) == expected


@pytest.mark.parametrize(
    "phase", ["after checkout", "after begin", "after an insert", "before commit"]
)
async def test_the_unit_of_work_after_a_terminated_backend_sees_only_its_tenant(
    tenants: Tenants, phase: str, fault_db: FaultDatabase
) -> None:
    # Whatever the lost unit of work raised (tested above), the next one must be clean.
    with suppress(TenancyError):
        await unit_of_work_killed_at(tenants, phase, [])
    added = customer()
    async with tenants.db.unit_of_work(tenants.a) as uow:
        connection = uow.connection()
        bound = await connection.scalar(text("SELECT current_setting('app.org_id', true)"))
        visible = await connection.scalar(text("SELECT count(*) FROM customers"))
        assert (bound, visible) == (str(tenants.a), len(tenants.a_customers))
        assert await uow.customers.count() == len(tenants.a_customers)
        await uow.customers.add(added)
        await uow.commit()
    assert await fault_db.tenant_customer_count(tenants.a) == len(tenants.a_customers) + 1
    assert await fault_db.customer_counts([added.id]) == {added.id: 1}
