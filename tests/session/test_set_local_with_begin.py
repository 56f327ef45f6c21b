"""SET LOCAL travels with BEGIN, and a pending one never outlives its checkout."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings


@pytest.fixture
async def single_connection_db(settings: TenancySettings) -> AsyncIterator[Database]:
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0})
    )
    yield database
    await database.dispose()


async def test_begin_and_set_local_are_one_message(
    single_connection_db: Database, org_a: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    original = asyncpg.Connection.execute

    async def spy(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        sent.append(query)
        return await original(self, query, *args, **kw)  # type: ignore[no-any-return]

    # Below TenantConnection: records what actually goes to the server.
    monkeypatch.setattr(asyncpg.Connection, "execute", spy)
    async with single_connection_db.session(org_a) as session:
        setting = (await session.execute(text("SELECT current_setting('app.org_id')"))).scalar()
    assert setting == str(org_a)
    assert sent[0] == f"BEGIN; SET LOCAL app.org_id = '{org_a}'"


async def test_pending_tenant_is_dropped_when_no_statement_ran(
    single_connection_db: Database, org_a: uuid.UUID
) -> None:
    async with single_connection_db.session(org_a) as session:
        await session.connection()  # begins the session transaction, sends nothing
    async with single_connection_db.engine.connect() as connection:
        setting = (
            await connection.execute(text("SELECT current_setting('app.org_id', true)"))
        ).scalar()
    assert setting in (None, "")


async def test_every_transaction_of_a_reused_session_sets_the_tenant(
    single_connection_db: Database, org_a: uuid.UUID
) -> None:
    query = text("SELECT current_setting('app.org_id', true)")
    async with single_connection_db.unit_of_work(org_a) as uow:
        first = (await uow.session.execute(query)).scalar()
        await uow.commit()
        second = (await uow.session.execute(query)).scalar()
    assert first == second == str(org_a)
