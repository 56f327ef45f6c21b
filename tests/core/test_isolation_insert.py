"""Isolation matrix, writes that name a tenant: inserts, moves, upserts, references.

A tenant cannot write a row into another tenant, move its own row there,
overwrite the other's row through ``ON CONFLICT DO UPDATE`` (by the primary key
or by a deliberately global key), or point a composite foreign key at the other
tenant's parent. The victim's graph is compared before and after every attempt.
"""

from __future__ import annotations

import pytest
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import Conflict, Database, ForeignKeyViolation, IsolationViolation
from tests.core.statements import STYLES, Statements, run
from tests.core.tenant_graph import (
    GLOBAL_KEYS,
    LOOKUP_REFERENCES,
    REFERENCES,
    SPECS,
    TABLES,
    TENANT_SCOPED,
    GlobalKey,
    LookupReference,
    Reference,
    TableSpec,
    Tenants,
    add_lookup,
    unchanged,
)

pytestmark = pytest.mark.security

each_style = pytest.mark.parametrize("sql", STYLES, ids=str)
each_table = pytest.mark.parametrize("spec", TABLES, ids=str)
tenant_scoped = pytest.mark.parametrize("spec", TENANT_SCOPED, ids=str)
# The organization row is the tenant itself, and a membership's key (org, user) is
# taken by the graph's own member: neither table gets a second row of its own here.
insertable = pytest.mark.parametrize(
    "spec", [s for s in TENANT_SCOPED if s.name not in ("organizations", "memberships")], ids=str
)
each_reference = pytest.mark.parametrize("reference", REFERENCES, ids=str)
each_global_key = pytest.mark.parametrize("unique", GLOBAL_KEYS, ids=str)
each_lookup_reference = pytest.mark.parametrize("reference", LOOKUP_REFERENCES, ids=str)


def _constraint_name(reference: Reference) -> str | None:
    table = SPECS[reference.table].table
    (constraint,) = (
        c
        for c in table.constraints
        if isinstance(c, ForeignKeyConstraint) and reference.column in c.column_keys
    )
    return str(constraint.name)


@insertable
@each_style
async def test_insert_of_own_row_lands_in_own_tenant(
    db: Database, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    row = spec.new_row(tenants.a)
    await add_lookup(db, tenants.a, spec, row)

    await run(db, tenants.a.org_id, sql.insert(spec, row))

    keys = (await run(db, tenants.a.org_id, sql.select_all(spec))).rows
    assert tuple({**row, "org_id": tenants.a.org_id}[column] for column in spec.key) in keys


@tenant_scoped
@each_style
async def test_insert_with_other_tenants_org_id_is_refused(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    assert spec.tenant_column is not None
    row = {**spec.new_row(tenants.a), spec.tenant_column: tenants.b.org_id}

    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, sql.insert(spec, row))


@tenant_scoped
@each_style
async def test_moving_own_row_to_other_tenant_is_refused(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    assert spec.tenant_column is not None
    statement = sql.update_by_key(spec, tenants.a.key(spec), {spec.tenant_column: tenants.b.org_id})

    async with unchanged(superuser, tenants.a), unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, statement)


@each_table
@each_style
async def test_upsert_on_other_tenants_key_is_refused(
    db: Database, superuser: AsyncEngine, tenants: Tenants, spec: TableSpec, sql: Statements
) -> None:
    row = {**spec.new_row(tenants.a), **tenants.b.key(spec)}
    statement = sql.upsert(spec, row, spec.key, dict([spec.change]))

    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, statement)


@each_global_key
@each_style
async def test_upsert_on_other_tenants_global_key_is_refused(
    db: Database, superuser: AsyncEngine, tenants: Tenants, unique: GlobalKey, sql: Statements
) -> None:
    spec = SPECS[unique.table]
    taken = {column: tenants.b.rows[spec.name][column] for column in unique.columns}
    row = {**spec.new_row(tenants.a), **taken}
    statement = sql.upsert(spec, row, unique.columns, dict([spec.change]))

    async with unchanged(superuser, tenants.b):
        with pytest.raises(IsolationViolation):
            await run(db, tenants.a.org_id, statement)


@each_reference
@each_style
async def test_insert_referencing_other_tenants_parent_is_refused(
    db: Database,
    superuser: AsyncEngine,
    tenants: Tenants,
    reference: Reference,
    sql: Statements,
) -> None:
    spec = SPECS[reference.table]
    row = {**spec.new_row(tenants.a), reference.column: tenants.b.id(reference.parent)}
    await add_lookup(db, tenants.a, spec, row)

    async with unchanged(superuser, tenants.b):
        with pytest.raises(ForeignKeyViolation) as caught:
            await run(db, tenants.a.org_id, sql.insert(spec, row))

    assert caught.value.constraint == _constraint_name(reference)


@each_reference
@each_style
async def test_repointing_own_row_at_other_tenants_parent_is_refused(
    db: Database,
    superuser: AsyncEngine,
    tenants: Tenants,
    reference: Reference,
    sql: Statements,
) -> None:
    spec = SPECS[reference.table]
    statement = sql.update_by_key(
        spec, tenants.a.key(spec), {reference.column: tenants.b.id(reference.parent)}
    )

    async with unchanged(superuser, tenants.a), unchanged(superuser, tenants.b):
        with pytest.raises(ForeignKeyViolation) as caught:
            await run(db, tenants.a.org_id, statement)

    assert caught.value.constraint == _constraint_name(reference)


@each_lookup_reference
@each_style
async def test_insert_claiming_other_tenants_lookup_row_is_refused(
    db: Database,
    superuser: AsyncEngine,
    tenants: Tenants,
    reference: LookupReference,
    sql: Statements,
) -> None:
    # The other tenant's token (and row id) with this tenant's org_id: no such lookup row.
    spec = SPECS[reference.table]
    theirs = tenants.b.rows[reference.parent]
    claimed = {own: theirs[parent] for own, parent in reference.columns}
    row = {**spec.new_row(tenants.a), **dict(reference.extra), **claimed}
    if reference.written_first:
        await add_lookup(db, tenants.a, spec, row, only=reference.written_first)

    async with unchanged(superuser, tenants.b):
        with pytest.raises((ForeignKeyViolation, Conflict)) as caught:
            await run(db, tenants.a.org_id, sql.insert(spec, row))

    (constraint,) = (
        c
        for c in spec.table.constraints
        if isinstance(c, ForeignKeyConstraint) and c.referred_table.name == reference.parent
    )
    assert caught.value.constraint in (reference.refused_by or (constraint.name,))
