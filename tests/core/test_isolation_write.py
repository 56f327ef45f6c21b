"""Isolation matrix, updates and deletes: another tenant's rows are never touched.

Every attempt on the victim's row runs inside ``unchanged``, which compares the
victim's whole graph before and after, read as superuser. Where the app role
has no privilege (the outbox is append-only, users cannot be deleted) the
expected outcome is a refusal, ``IsolationViolation``, which crosses nothing
either. Controls on the tenant's own rows prove the statements do work.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import Database, IsolationViolation
from tests.core.statements import STYLES, Statements, run
from tests.core.tenant_graph import TABLES, TableSpec, Tenants, unchanged

pytestmark = pytest.mark.security

each_style = pytest.mark.parametrize("sql", STYLES, ids=str)
updatable = pytest.mark.parametrize("spec", [s for s in TABLES if s.app_may_update], ids=str)
not_updatable = pytest.mark.parametrize(
    "spec", [s for s in TABLES if not s.app_may_update], ids=str
)
deletable = pytest.mark.parametrize("spec", [s for s in TABLES if s.app_may_delete], ids=str)
deleted_by_tenant = pytest.mark.parametrize(
    "spec", [s for s in TABLES if s.app_may_delete and not s.ended_by_function], ids=str
)
not_deletable = pytest.mark.parametrize(
    "spec", [s for s in TABLES if not s.app_may_delete], ids=str
)


@updatable
@each_style
async def test_update_of_other_tenants_row_changes_nothing(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.update_by_key(spec, tenants.b.key(spec), dict([spec.change]))

    async with unchanged(superuser, tenants.b):
        outcome = await run(db, tenants.a.org_id, statement)

    assert outcome.rowcount == 0


@updatable
@each_style
async def test_update_of_own_row_changes_it(
    db: Database, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.update_by_key(spec, tenants.a.key(spec), dict([spec.change]))

    outcome = await run(db, tenants.a.org_id, statement)

    assert outcome.rowcount == 1


@not_updatable
@each_style
async def test_update_is_refused_where_the_app_may_not_update(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.update_by_key(spec, tenants.b.key(spec), dict([spec.change]))

    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, statement)


@updatable
@each_style
async def test_update_returning_returns_only_own_rows(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    async with unchanged(superuser, tenants.b):
        outcome = await run(db, tenants.a.org_id, sql.touch_all_returning(spec))

    assert outcome.rows == [tuple(tenants.a.key(spec).values())]


@not_updatable
@each_style
async def test_update_returning_is_refused_where_the_app_may_not_update(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, sql.touch_all_returning(spec))


@deletable
@each_style
async def test_delete_of_other_tenants_row_removes_nothing(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.delete_by_key(spec, tenants.b.key(spec))

    async with unchanged(superuser, tenants.b):
        outcome = await run(db, tenants.a.org_id, statement)

    assert outcome.rowcount == 0


@deletable
@each_style
async def test_delete_returning_of_other_tenants_row_returns_nothing(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.delete_by_key(spec, tenants.b.key(spec), returning=True)

    async with unchanged(superuser, tenants.b):
        outcome = await run(db, tenants.a.org_id, statement)

    assert outcome.rows == []


@deleted_by_tenant
@each_style
async def test_delete_returning_of_own_row_returns_it(
    db: Database, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    # Rows referencing this one go first: most foreign keys do not cascade.
    later = TABLES[TABLES.index(spec) + 1 :]
    async with db.session(tenants.a.org_id) as session:
        connection = await session.connection()
        for child in reversed([s for s in later if s.app_may_delete]):
            await connection.execute(sql.delete_by_key(child, tenants.a.key(child)))
        statement = sql.delete_by_key(spec, tenants.a.key(spec), returning=True)
        rows = [tuple(row) for row in await connection.execute(statement)]

    assert rows == [tuple(tenants.a.key(spec).values())]


@not_deletable
@each_style
async def test_delete_is_refused_where_the_app_may_not_delete(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.delete_by_key(spec, tenants.b.key(spec), returning=True)

    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, statement)
