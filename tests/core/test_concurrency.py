"""Concurrency: hundreds of tasks over tens of tenants share a small pool, never a tenant.

Each task checks inside its own transaction that the tenant setting is its own
and that every customer it can see belongs to it, in the number it owns. Half
of the tasks pass the tenant explicitly, half bind it with ``db.tenant`` so the
``ContextVar`` is exercised under the same interleaving.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy import Database, TenancySettings

pytestmark = [pytest.mark.security, pytest.mark.slow]

TENANTS = 20
TASKS = 300
POOL_SIZE = 5


@pytest.fixture
async def small_pool_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` with a pool of five connections and no overflow."""
    database = await PlatformDatabase.connect(
        settings.model_copy(
            update={"pool_size": POOL_SIZE, "max_overflow": 0, "pool_timeout": 60.0}
        )
    )
    yield database
    await database.dispose()


async def _tenant(db: Database, customers: int) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=f"tenant with {customers}"))
        await session.flush()
        session.add_all(
            Customer(email=f"{i}-{uuid.uuid4().hex}@example.com") for i in range(customers)
        )
    return org_id


Observation = tuple[int, str, list[uuid.UUID]]
LOOK = text("SELECT pg_backend_pid(), current_setting('app.org_id')")


async def _look(session: AsyncSession) -> Observation:
    pid, setting = (await session.execute(LOOK)).one()
    # Yield to the other tasks between the statements of one transaction.
    await asyncio.sleep(0)
    owners = list((await session.execute(text("SELECT org_id FROM customers"))).scalars())
    return pid, setting, owners


async def _observe(db: Database, org_id: uuid.UUID, bind: bool) -> Observation:
    """Return the backend, the tenant setting and the owner of every visible customer."""
    if bind:
        async with db.tenant(org_id), db.session() as session:
            return await _look(session)
    async with db.session(org_id) as session:
        return await _look(session)


async def test_hundreds_of_concurrent_tasks_each_see_only_their_tenant(
    small_pool_db: Database,
) -> None:
    counts = {await _tenant(small_pool_db, n): n for n in range(1, TENANTS + 1)}
    tenants = list(counts)
    plan = [(tenants[i % TENANTS], i % 2 == 0) for i in range(TASKS)]

    results = await asyncio.gather(*(_observe(small_pool_db, o, bind) for o, bind in plan))

    for (org_id, _), (_, setting, owners) in zip(plan, results, strict=True):
        assert setting == str(org_id)
        assert owners == [org_id] * counts[org_id]
    assert 1 < len({pid for pid, _, _ in results}) <= POOL_SIZE
