"""Isolation matrix, reads: a tenant sees and counts only its own rows, in every table.

Each case runs once as SQLAlchemy Core and once as raw SQL, as the app role,
through the session's connection (below any ORM criteria): the database alone
decides what is visible. A superuser control runs the same statement to prove
the other tenant's row is there to be seen.
"""

from __future__ import annotations

import pytest
from sqlalchemy import ForeignKeyConstraint, text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.models import TENANT_TABLES, Base
from tenancy import Database
from tests.core.statements import STYLES, Statements, run, run_as_superuser
from tests.core.tenant_graph import LOOKUP_REFERENCES, REFERENCES, TABLES, TableSpec, Tenants

pytestmark = pytest.mark.security

each_table = pytest.mark.parametrize("spec", TABLES, ids=str)
each_style = pytest.mark.parametrize("sql", STYLES, ids=str)


def test_matrix_covers_every_table_of_the_models() -> None:
    assert {spec.name for spec in TABLES} == {"organizations", "users", *TENANT_TABLES}


def test_matrix_covers_every_composite_foreign_key() -> None:
    composite = {
        (constraint.table.name, column.name, constraint.referred_table.name)
        for table in Base.metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, ForeignKeyConstraint) and len(constraint.columns) > 1
        for column in constraint.columns
        if column.name != "org_id"
    }
    lookups = {(r.table, own, r.parent) for r in LOOKUP_REFERENCES for own, _ in r.columns}
    assert composite == {(r.table, r.column, r.parent) for r in REFERENCES} | lookups


async def test_matrix_covers_every_table_under_row_level_security(
    superuser: AsyncEngine,
) -> None:
    query = text(
        "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
        " AND relnamespace = 'public'::regnamespace"
    )
    async with superuser.connect() as connection:
        protected = set((await connection.execute(query)).scalars())
    assert protected == {spec.name for spec in TABLES}


@each_table
@each_style
async def test_select_returns_only_own_rows(
    db: Database, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    outcome = await run(db, tenants.a.org_id, sql.select_all(spec))

    assert outcome.rows == [tuple(tenants.a.key(spec).values())]


@each_table
@each_style
async def test_select_by_other_tenants_key_finds_nothing(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    statement = sql.select_by_key(spec, tenants.b.key(spec))

    outcome = await run(db, tenants.a.org_id, statement)

    assert outcome.rows == []
    assert len((await run_as_superuser(superuser, statement)).rows) == 1


@each_table
@each_style
async def test_count_counts_only_own_rows(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    outcome = await run(db, tenants.a.org_id, sql.count(spec))

    assert outcome.rows == [(1,)]
    assert (await run_as_superuser(superuser, sql.count(spec))).rows[0][0] >= 2
