"""What tenant B's cancelled unit of work does: each one covers other phases of its life.

Every workload opens ``db.unit_of_work(B)`` (checkout), runs statements (the first
one carries ``BEGIN; SET LOCAL``) and leaves, which rolls back on close. Ids of
customers whose ``commit()`` returned go into ``acknowledged``: they must persist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import text

from tenancy import Database
from tests.cancellation.tenants import Tenant, new_customer

Workload = Callable[[Database, Tenant, list[uuid.UUID]], Coroutine[Any, Any, None]]


async def two_reads(db: Database, b: Tenant, acknowledged: list[uuid.UUID]) -> None:
    """The issue's reproduction: two ``get_or_none`` on the driver path, then ROLLBACK."""
    first, second, *_ = sorted(b.customer_ids)
    async with db.unit_of_work(b.org_id) as uow:
        await uow.customers.get_or_none(first)
        await uow.customers.get_or_none(second)


async def insert_and_commit(db: Database, b: Tenant, acknowledged: list[uuid.UUID]) -> None:
    """An insert with its outbox event and COMMIT on the driver path; a read; ROLLBACK."""
    async with db.unit_of_work(b.org_id) as uow:
        added = await uow.customers.add(new_customer("b"))
        await uow.commit()
        acknowledged.append(added.id)
        await uow.customers.get_or_none(added.id)


async def savepoint_and_commit(db: Database, b: Tenant, acknowledged: list[uuid.UUID]) -> None:
    """A read, an insert in a savepoint, COMMIT on the Core path, raw SQL, ROLLBACK on close."""
    async with db.unit_of_work(b.org_id) as uow:
        await uow.customers.get_or_none(min(b.customer_ids))
        async with uow.savepoint():
            added = await uow.customers.add(new_customer("b"))
        await uow.commit()
        acknowledged.append(added.id)
        await uow.connection().execute(text("SELECT count(*) FROM customers"))


WORKLOADS = [
    pytest.param(two_reads, id="two reads"),
    pytest.param(insert_and_commit, id="insert and commit"),
    pytest.param(savepoint_and_commit, id="savepoint and commit"),
]
