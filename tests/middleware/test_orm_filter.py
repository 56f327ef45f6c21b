"""The ORM-level second layer: the tenant criterion on every ORM query of tenant models.

Three set-ups: RLS alone (filter off), RLS and the filter (on), and the filter
alone on a connection that bypasses RLS, which shows the layer works by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from repositories import PlatformDatabase
from repositories.customer import CustomerRepository
from repositories.models import Customer, Membership, Organization
from tenancy import Database
from tenancy.db.engine import create_engine
from tenancy.db.orm_filter import (
    filtered_session_class,
    install_tenant_filter,
    is_tenant_filter_installed,
)
from tenancy.db.session import TenantSession
from tenancy.errors import TenantContextRequired
from tenancy.specification import Specification
from tests.middleware.identities import create_member

pytestmark = pytest.mark.security


class FilteredSession(TenantSession):
    """A tenant session with the ORM tenant filter installed (by the fixture)."""


def filtered_sessions(db: Database) -> async_sessionmaker[AsyncSession]:
    """Return a session factory like ``db``'s whose sessions carry the ORM filter."""
    install_tenant_filter(FilteredSession)
    return async_sessionmaker(
        db.engine, sync_session_class=FilteredSession, expire_on_commit=False, autoflush=False
    )


@pytest.fixture(params=["rls_only", "rls_and_filter"])
def app_db(request: pytest.FixtureRequest, db: Database) -> Database:
    """The app-role database, with the ORM filter off and then on."""
    database = PlatformDatabase(db.engine, db.settings)
    if request.param == "rls_and_filter":
        database.sessionmaker = filtered_sessions(database)
    return database


@pytest.fixture
async def filter_only_db(admin_url: URL, db: Database) -> AsyncIterator[Database]:
    """A superuser connection (RLS does not apply) whose sessions carry the ORM filter."""
    engine = create_engine(db.settings, admin_url)
    database = PlatformDatabase(engine, db.settings)
    database.sessionmaker = filtered_sessions(database)
    yield database
    await engine.dispose()


@pytest.fixture
async def two_tenants(db: Database, org_a: uuid.UUID, org_b: uuid.UUID) -> dict[uuid.UUID, Any]:
    """One customer and one member in each of ``org_a`` and ``org_b``."""
    rows: dict[uuid.UUID, Any] = {}
    for org in (org_a, org_b):
        async with db.unit_of_work(org) as uow:
            customer = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@x.test"))
            await uow.commit()
        rows[org] = {"customer": customer.id, "member": await create_member(db, org)}
    return rows


# -- isolation holds with the filter off (RLS alone) and on -------------------------


async def test_select_returns_only_own_customers(
    app_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with app_db.session(org_a) as session:
        orgs = set((await session.scalars(select(Customer.org_id))).all())
    assert orgs == {org_a}


async def test_other_tenants_customer_is_not_found_by_key(
    app_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    async with app_db.session(org_a) as session:
        assert await session.get(Customer, (org_b, two_tenants[org_b]["customer"])) is None


async def test_repository_list_and_spec_query_return_only_own_rows(
    app_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = two_tenants[org_b]["customer"]
    async with app_db.session(org_a) as session:
        repository = CustomerRepository(session)
        listed = {c.id for c in await repository.list()}
        matched = await repository.list(Specification[Customer](Customer.id == theirs))
    assert listed == {two_tenants[org_a]["customer"]}
    assert matched == []


async def test_upsert_works_and_stays_in_tenant(
    app_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with app_db.session(org_a) as session:
        upserted = await CustomerRepository(session).upsert({"email": "same@x.test", "name": "n"})
    assert upserted.org_id == org_a


async def test_bulk_update_changes_only_own_rows(
    app_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with app_db.session(org_a) as session:
        changed = await session.scalars(
            update(Customer).values(name="bulk").returning(Customer.org_id)
        )
        orgs = list(changed.all())
    assert orgs == [org_a]


# -- the filter alone (connection bypasses RLS) ---------------------------------------


async def test_filter_alone_restricts_select_to_the_session_tenant(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        orgs = set((await session.scalars(select(Customer.org_id))).all())
    assert orgs == {org_a}


async def test_filter_alone_restricts_aliases_and_subqueries(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    other = aliased(Customer)
    inner = select(other.id).scalar_subquery()
    async with filter_only_db.session(org_a) as session:
        ids = set((await session.scalars(select(Customer.id).where(Customer.id.in_(inner)))).all())
    assert ids == {two_tenants[org_a]["customer"]}


async def test_filter_alone_restricts_aggregates(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        orgs = (
            await session.execute(select(Customer.org_id, func.count()).group_by(Customer.org_id))
        ).all()
    assert [row.org_id for row in orgs] == [org_a]


async def test_filter_alone_restricts_memberships(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        orgs = set((await session.scalars(select(Membership.org_id))).all())
    assert orgs == {org_a}


async def test_filter_alone_restricts_organizations_to_the_tenant_itself(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        ids = set((await session.scalars(select(Organization.id))).all())
    assert ids == {org_a}


@pytest.mark.parametrize("option", ["tenancy_tenant_filter", "_tenancy_tenant_filter"])
async def test_filter_cannot_be_switched_off_by_an_execution_option(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID, option: str
) -> None:
    async with filter_only_db.session(org_a) as session:
        statement = select(Customer.org_id).execution_options(**{option: True})
        orgs = set((await session.scalars(statement)).all())
    assert orgs == {org_a}


async def test_filter_alone_restricts_bulk_update(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        changed = await session.scalars(
            update(Customer).values(name="bulk").returning(Customer.org_id)
        )
        orgs = set(changed.all())
        await session.rollback()
    assert orgs == {org_a}


async def test_filter_alone_restricts_bulk_delete(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID
) -> None:
    async with filter_only_db.session(org_a) as session:
        deleted = await session.scalars(delete(Customer).returning(Customer.org_id))
        orgs = set(deleted.all())
        await session.rollback()
    assert orgs == {org_a}


# -- mechanics -----------------------------------------------------------------------


@pytest.fixture
def statements(filter_only_db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Record the SQL and parameters ``filter_only_db`` sends."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    engine = filter_only_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def test_tenant_is_a_bind_parameter_not_a_literal(
    filter_only_db: Database,
    two_tenants: dict[uuid.UUID, Any],
    org_a: uuid.UUID,
    statements: list[tuple[str, Any]],
) -> None:
    async with filter_only_db.session(org_a) as session:
        await session.scalars(select(Customer))
    sql, parameters = next((s, p) for s, p in statements if "FROM customers" in s)
    assert "customers.org_id = $" in sql
    assert str(org_a) not in sql
    assert org_a in tuple(parameters)


async def test_statement_is_compiled_once_for_all_tenants(
    filter_only_db: Database, two_tenants: dict[uuid.UUID, Any], org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    cache = filter_only_db.engine.sync_engine._compiled_cache
    assert cache is not None
    query = select(Customer).where(Customer.name != "")
    async with filter_only_db.session(org_a) as session:
        await session.scalars(query)
    size = len(cache)
    async with filter_only_db.session(org_b) as session:
        await session.scalars(query)
    assert len(cache) == size


def test_installing_twice_adds_one_listener() -> None:
    class Twice(TenantSession):
        pass

    install_tenant_filter(Twice)
    install_tenant_filter(Twice)
    listeners: list[Any] = []
    event.listen(Twice, "do_orm_execute", lambda state: listeners.append(state))
    assert is_tenant_filter_installed(Twice)


def test_plain_tenant_session_has_no_filter_until_installed() -> None:
    class Plain(TenantSession):
        pass

    assert not is_tenant_filter_installed(Plain)


async def test_session_without_tenant_cannot_query(filter_only_db: Database) -> None:
    session = filter_only_db.sessionmaker()
    try:
        with pytest.raises(TenantContextRequired):
            await session.scalars(select(Customer))
    finally:
        await session.close()


def test_filtered_session_class_has_the_filter_and_plain_sessions_do_not() -> None:
    filtered = filtered_session_class()
    assert issubclass(filtered, TenantSession)
    assert is_tenant_filter_installed(filtered)
    assert not is_tenant_filter_installed(TenantSession)
