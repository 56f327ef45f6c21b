"""A pooled connection left dead by a server restart is replaced before any statement."""

from __future__ import annotations

from tenancy import Database
from tests.faults.conftest import OpenDatabase
from tests.faults.support import FaultDatabase, customer, new_organization


async def test_the_first_unit_of_work_after_a_restart_succeeds_on_a_pool_of_one(
    open_database: OpenDatabase, fault_db: FaultDatabase
) -> None:
    db: Database = await open_database(pool_size=1, max_overflow=0)
    org_id = await new_organization(db)  # the pool's one connection is now open and idle
    fault_db.server.restart()
    added = customer()
    async with db.unit_of_work(org_id) as uow:
        await uow.customers.add(added)
        await uow.commit()
    assert await fault_db.customer_counts([added.id]) == {added.id: 1}
