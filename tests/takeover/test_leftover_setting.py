"""A session-level tenant setting left on a pooled connection is never seen again.

A stray ``SET app.org_id`` or ``set_config('app.org_id', x, false)`` (a bug, or an
injection) outlives its transaction on the server connection. Every transaction
the library's engines start without a tenant makes the setting explicitly
empty in the same message as its BEGIN, and every tenant transaction sets its
own tenant, so the value left behind is never seen: the tenant-less paths (the
login and payment-link resolvers, a plain ``engine.connect()``) see no tenant
and no rows. Checked on a pool of one connection, directly and through
pgbouncer in transaction mode (one server connection for every client).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from repositories.payment_link_resolver import PaymentLinkResolver
from repositories.user import LoginResolver
from tenancy import Database, NotFound, TenancySettings
from tenancy.testing.pgbouncer import Bouncer, running_pgbouncer

pytestmark = pytest.mark.security

SETTING = text("SELECT current_setting('app.org_id', true)")
CUSTOMERS = text("SELECT count(*) FROM customers")

LEAKS = {
    "SET": "SET app.org_id = '{org}'",
    "set_config": "SELECT set_config('app.org_id', '{org}', false)",
}


def _one_connection(settings: TenancySettings) -> TenancySettings:
    return settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 10.0})


@pytest.fixture
async def one_connection_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` whose pool holds exactly one connection."""
    database = await PlatformDatabase.connect(_one_connection(settings))
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def pgbouncer(settings: TenancySettings) -> AsyncIterator[Bouncer]:
    """pgbouncer in transaction pooling mode in front of the test database."""
    async with running_pgbouncer(settings.app_url()) as bouncer:
        yield bouncer


@pytest.fixture
async def bounced_db(settings: TenancySettings, pgbouncer: Bouncer) -> AsyncIterator[Database]:
    """A one-connection ``Database`` through pgbouncer's one-server-connection pool."""
    url = pgbouncer.url(settings.app_url(), single=True)
    bounced = settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "pooler": "pgbouncer-transaction",
        }
    )
    database = await PlatformDatabase.connect(_one_connection(bounced))
    yield database
    await database.dispose()


async def _tenant_with_customer(db: Database) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.unit_of_work(org_id) as uow:
        uow.session.add(Organization(id=org_id, name="leaky"))
        await uow.commit()
        await uow.customers.add(Customer(name="c", email=f"{uuid.uuid4().hex}@leak.example"))
        await uow.commit()
    return org_id


async def _leave_setting(db: Database, org_id: uuid.UUID, leak: str) -> None:
    # The tenant's own unit of work runs the stray statement and commits.
    async with db.unit_of_work(org_id) as uow:
        await uow.connection().execute(text(LEAKS[leak].format(org=org_id)))
        await uow.commit()


@pytest.mark.parametrize("leak", LEAKS)
async def test_plain_connection_sees_no_tenant_after_a_leftover_setting(
    one_connection_db: Database, leak: str
) -> None:
    org_id = await _tenant_with_customer(one_connection_db)
    await _leave_setting(one_connection_db, org_id, leak)

    async with one_connection_db.engine.connect() as connection:
        setting = (await connection.execute(SETTING)).scalar()
        customers = (await connection.execute(CUSTOMERS)).scalar()

    assert (setting, customers) == ("", 0)


@pytest.mark.parametrize("leak", LEAKS)
async def test_next_tenant_sees_only_its_rows_after_a_leftover_setting(
    one_connection_db: Database, leak: str
) -> None:
    leaker = await _tenant_with_customer(one_connection_db)
    other = await _tenant_with_customer(one_connection_db)
    await _leave_setting(one_connection_db, leaker, leak)

    async with one_connection_db.unit_of_work(other) as uow:
        setting = (await uow.connection().execute(SETTING)).scalar()
        customers = await uow.customers.count()

    assert (setting, customers) == (str(other), 1)


@pytest.mark.parametrize("leak", LEAKS)
async def test_login_resolver_runs_without_the_leftover_tenant(
    one_connection_db: Database, leak: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id = await _tenant_with_customer(one_connection_db)
    await _leave_setting(one_connection_db, org_id, leak)
    begins = _record_begins(monkeypatch)

    assert await LoginResolver(one_connection_db.engine).resolve("nobody@leak.example") is None

    assert begins
    assert all(b.endswith("SET LOCAL app.org_id = ''") for b in begins)


@pytest.mark.parametrize("leak", LEAKS)
async def test_payment_link_resolver_runs_without_the_leftover_tenant(
    one_connection_db: Database, leak: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id = await _tenant_with_customer(one_connection_db)
    await _leave_setting(one_connection_db, org_id, leak)
    begins = _record_begins(monkeypatch)

    with pytest.raises(NotFound):
        await PaymentLinkResolver(one_connection_db.engine).resolve("no-such-token")

    assert begins
    assert all(b.endswith("SET LOCAL app.org_id = ''") for b in begins)


@pytest.mark.parametrize("leak", LEAKS)
async def test_plain_connection_behind_pgbouncer_sees_no_tenant_after_a_leftover_setting(
    bounced_db: Database, leak: str
) -> None:
    org_id = await _tenant_with_customer(bounced_db)
    await _leave_setting(bounced_db, org_id, leak)

    async with bounced_db.engine.connect() as connection:
        setting = (await connection.execute(SETTING)).scalar()
        customers = (await connection.execute(CUSTOMERS)).scalar()

    assert (setting, customers) == ("", 0)


def _record_begins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every BEGIN message that reaches the server (below TenantConnection)."""
    sent: list[str] = []
    original = asyncpg.Connection.execute

    async def spy(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        if query.startswith("BEGIN"):
            sent.append(query)
        return await original(self, query, *args, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(asyncpg.Connection, "execute", spy)
    return sent
