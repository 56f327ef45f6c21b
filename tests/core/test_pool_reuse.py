"""Pool reuse: one pooled connection serves many tenants, and never carries one over.

``one_connection_db`` has a pool of exactly one connection, so every
transaction here runs on the same server backend; ``pg_backend_pid()`` proves it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from repositories.models import Customer, Organization
from tenancy import Database, InvalidData
from tenancy.db.session import open_session

pytestmark = pytest.mark.security

BACKEND = text("SELECT pg_backend_pid(), current_setting('app.org_id', true)")
VISIBLE = text("SELECT org_id, count(*) FROM customers GROUP BY org_id")


class Boom(Exception):
    """An application error raised inside a session block."""


async def _tenant_with_customers(db: Database, count: int) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=f"org with {count}"))
        await session.flush()
        session.add_all(
            Customer(email=f"c{i}-{uuid.uuid4().hex}@example.com") for i in range(count)
        )
    return org_id


async def _tenants(db: Database, how_many: int) -> dict[uuid.UUID, int]:
    """Create tenants holding 1, 2, ... customers; return each one's customer count."""
    counts = {}
    for count in range(1, how_many + 1):
        counts[await _tenant_with_customers(db, count)] = count
    return counts


async def _visible(db: Database, org_id: uuid.UUID) -> tuple[int, dict[uuid.UUID, int]]:
    async with db.session(org_id) as session:
        pid = (await session.execute(BACKEND)).one()[0]
        visible = {row[0]: row[1] for row in await session.execute(VISIBLE)}
    return pid, visible


async def _backend_without_tenant(db: Database) -> tuple[int, str | None]:
    async with db.engine.connect() as connection:
        pid, setting = (await connection.execute(BACKEND)).one()
    return pid, setting


async def test_sequential_transactions_of_different_tenants_see_only_their_rows(
    one_connection_db: Database,
) -> None:
    counts = await _tenants(one_connection_db, 5)

    pids = set()
    for _ in range(6):
        for org_id, count in counts.items():
            pid, visible = await _visible(one_connection_db, org_id)
            pids.add(pid)
            assert visible == {org_id: count}

    assert len(pids) == 1


async def test_concurrent_transactions_of_different_tenants_see_only_their_rows(
    one_connection_db: Database,
) -> None:
    counts = await _tenants(one_connection_db, 5)
    order = [org_id for org_id in counts for _ in range(10)]

    results = await asyncio.gather(*(_visible(one_connection_db, org_id) for org_id in order))

    assert [visible for _, visible in results] == [{o: counts[o]} for o in order]
    assert len({pid for pid, _ in results}) == 1


async def _commit(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))


async def _rollback(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
    await session.rollback()


async def _raise(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
    raise Boom


async def _fail_in_database(session: AsyncSession) -> None:
    await session.execute(text("SELECT CAST('not a uuid' AS uuid)"))


async def _run_nothing(session: AsyncSession) -> None:
    # Begins the session transaction without running a statement: the tenant
    # statement is still pending on the driver when the connection goes back.
    await session.connection()


ENDINGS = [
    pytest.param(_commit, None, id="commit"),
    pytest.param(_rollback, None, id="rollback"),
    pytest.param(_raise, Boom, id="exception in the block"),
    pytest.param(_fail_in_database, InvalidData, id="database error"),
    pytest.param(_run_nothing, None, id="no statement run"),
]


@pytest.mark.parametrize(("body", "raises"), ENDINGS)
async def test_setting_is_gone_from_the_pooled_connection_after_the_transaction(
    one_connection_db: Database,
    body: Callable[[AsyncSession], Awaitable[None]],
    raises: type[Exception] | None,
) -> None:
    org_id = uuid.uuid4()
    pid_before, _ = await _backend_without_tenant(one_connection_db)

    with pytest.raises(raises) if raises else nullcontext():
        async with one_connection_db.session(org_id) as session:
            await body(session)

    pid_after, setting = await _backend_without_tenant(one_connection_db)
    assert pid_after == pid_before
    assert setting in ("", None)


async def test_setting_is_present_inside_the_transaction(one_connection_db: Database) -> None:
    org_id = uuid.uuid4()

    async with one_connection_db.session(org_id) as session:
        _, setting = (await session.execute(BACKEND)).one()

    assert setting == str(org_id)


async def test_every_transaction_of_a_session_carries_the_tenant(
    one_connection_db: Database,
) -> None:
    # db.session() is one transaction; a session from the factory may run several.
    org_id = uuid.uuid4()
    session = open_session(one_connection_db.sessionmaker, org_id)
    settings = []

    async with session:
        for _ in range(3):
            async with session.begin():
                settings.append((await session.execute(BACKEND)).one()[1])

    assert settings == [str(org_id)] * 3
