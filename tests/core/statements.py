"""The matrix's statements, written twice: as SQLAlchemy Core and as raw SQL text.

Both builders produce the same SQL semantics, so every isolation case runs once
through the expression language and once as hand-written SQL with bind
parameters. Table and column names come from the model metadata, never from input.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Executable, Table, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from tenancy import Database
from tests.core.tenant_graph import TableSpec

Row = Mapping[str, Any]


class Statements(Protocol):
    """Builds the statements the isolation matrix runs."""

    def select_all(self, spec: TableSpec) -> Executable:
        """Select the key of every visible row."""
        ...

    def select_by_key(self, spec: TableSpec, key: Row) -> Executable:
        """Select the row with primary key ``key``."""
        ...

    def count(self, spec: TableSpec) -> Executable:
        """Count the visible rows."""
        ...

    def insert(self, spec: TableSpec, row: Row) -> Executable:
        """Insert ``row``."""
        ...

    def update_by_key(
        self, spec: TableSpec, key: Row, values: Row, *, returning: bool = False
    ) -> Executable:
        """Set ``values`` on the row with primary key ``key``."""
        ...

    def touch_all_returning(self, spec: TableSpec) -> Executable:
        """Rewrite the change column of every visible row to itself, returning the keys."""
        ...

    def delete_by_key(self, spec: TableSpec, key: Row, *, returning: bool = False) -> Executable:
        """Delete the row with primary key ``key``."""
        ...

    def upsert(
        self, spec: TableSpec, row: Row, conflict: tuple[str, ...], values: Row
    ) -> Executable:
        """Insert ``row``, or on a ``conflict`` key collision set ``values`` instead."""
        ...


class CoreStatements:
    """The statements as SQLAlchemy Core constructs."""

    def __str__(self) -> str:
        return "core"

    def select_all(self, spec: TableSpec) -> Executable:
        """Select the key of every visible row."""
        return select(*_key_columns(spec))

    def select_by_key(self, spec: TableSpec, key: Row) -> Executable:
        """Select the row with primary key ``key``."""
        return select(*_key_columns(spec)).where(*_match(spec.table, key))

    def count(self, spec: TableSpec) -> Executable:
        """Count the visible rows."""
        return select(func.count()).select_from(spec.table)

    def insert(self, spec: TableSpec, row: Row) -> Executable:
        """Insert ``row``."""
        return pg_insert(spec.table).values(dict(row))

    def update_by_key(
        self, spec: TableSpec, key: Row, values: Row, *, returning: bool = False
    ) -> Executable:
        """Set ``values`` on the row with primary key ``key``."""
        statement = update(spec.table).where(*_match(spec.table, key)).values(dict(values))
        return statement.returning(*_key_columns(spec)) if returning else statement

    def touch_all_returning(self, spec: TableSpec) -> Executable:
        """Rewrite the change column of every visible row to itself, returning the keys."""
        column = spec.table.c[spec.change[0]]
        return update(spec.table).values({column: column}).returning(*_key_columns(spec))

    def delete_by_key(self, spec: TableSpec, key: Row, *, returning: bool = False) -> Executable:
        """Delete the row with primary key ``key``."""
        statement = delete(spec.table).where(*_match(spec.table, key))
        return statement.returning(*_key_columns(spec)) if returning else statement

    def upsert(
        self, spec: TableSpec, row: Row, conflict: tuple[str, ...], values: Row
    ) -> Executable:
        """Insert ``row``, or on a ``conflict`` key collision set ``values`` instead."""
        return (
            pg_insert(spec.table)
            .values(dict(row))
            .on_conflict_do_update(index_elements=list(conflict), set_=dict(values))
        )


class SqlStatements:
    """The statements as raw SQL text with typed bind parameters."""

    def __str__(self) -> str:
        return "sql"

    def select_all(self, spec: TableSpec) -> Executable:
        """Select the key of every visible row."""
        return text(f"SELECT {', '.join(spec.key)} FROM {spec.name}")

    def select_by_key(self, spec: TableSpec, key: Row) -> Executable:
        """Select the row with primary key ``key``."""
        where, binds = _where(spec.table, key)
        return text(f"SELECT {', '.join(spec.key)} FROM {spec.name} WHERE {where}").bindparams(
            *binds
        )

    def count(self, spec: TableSpec) -> Executable:
        """Count the visible rows."""
        return text(f"SELECT count(*) FROM {spec.name}")

    def insert(self, spec: TableSpec, row: Row) -> Executable:
        """Insert ``row``."""
        columns, binds = _values(spec.table, row, "v")
        names = ", ".join(row)
        return text(f"INSERT INTO {spec.name} ({names}) VALUES ({columns})").bindparams(*binds)

    def update_by_key(
        self, spec: TableSpec, key: Row, values: Row, *, returning: bool = False
    ) -> Executable:
        """Set ``values`` on the row with primary key ``key``."""
        assignments, set_binds = _assignments(spec.table, values)
        where, where_binds = _where(spec.table, key)
        sql = f"UPDATE {spec.name} SET {assignments} WHERE {where}"
        sql += f" RETURNING {', '.join(spec.key)}" if returning else ""
        return text(sql).bindparams(*set_binds, *where_binds)

    def touch_all_returning(self, spec: TableSpec) -> Executable:
        """Rewrite the change column of every visible row to itself, returning the keys."""
        column = spec.change[0]
        return text(f"UPDATE {spec.name} SET {column} = {column} RETURNING {', '.join(spec.key)}")

    def delete_by_key(self, spec: TableSpec, key: Row, *, returning: bool = False) -> Executable:
        """Delete the row with primary key ``key``."""
        where, binds = _where(spec.table, key)
        sql = f"DELETE FROM {spec.name} WHERE {where}"
        sql += f" RETURNING {', '.join(spec.key)}" if returning else ""
        return text(sql).bindparams(*binds)

    def upsert(
        self, spec: TableSpec, row: Row, conflict: tuple[str, ...], values: Row
    ) -> Executable:
        """Insert ``row``, or on a ``conflict`` key collision set ``values`` instead."""
        columns, insert_binds = _values(spec.table, row, "v")
        assignments, set_binds = _assignments(spec.table, values)
        sql = (
            f"INSERT INTO {spec.name} ({', '.join(row)}) VALUES ({columns}) "
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments}"
        )
        return text(sql).bindparams(*insert_binds, *set_binds)


#: Both builders, for ``pytest.mark.parametrize``.
STYLES: tuple[Statements, ...] = (CoreStatements(), SqlStatements())


def _key_columns(spec: TableSpec) -> list[ColumnElement[Any]]:
    return [spec.table.c[name] for name in spec.key]


def _match(table: Table, key: Row) -> list[ColumnElement[bool]]:
    return [table.c[name] == value for name, value in key.items()]


def _bind(table: Table, column: str, value: Any, prefix: str) -> BindParameter[Any]:
    # The column's type makes the driver encode the value as Postgres expects
    # (uuid, jsonb, numeric, arrays) without casts in the SQL text.
    return bindparam(f"{prefix}_{column}", value, type_=table.c[column].type)


def _values(table: Table, row: Row, prefix: str) -> tuple[str, list[BindParameter[Any]]]:
    binds = [_bind(table, name, value, prefix) for name, value in row.items()]
    return ", ".join(f":{b.key}" for b in binds), binds


def _assignments(table: Table, values: Row) -> tuple[str, list[BindParameter[Any]]]:
    binds = [_bind(table, name, value, "s") for name, value in values.items()]
    return ", ".join(f"{name} = :{b.key}" for name, b in zip(values, binds, strict=True)), binds


def _where(table: Table, key: Row) -> tuple[str, list[BindParameter[Any]]]:
    binds = [_bind(table, name, value, "k") for name, value in key.items()]
    return " AND ".join(f"{name} = :{b.key}" for name, b in zip(key, binds, strict=True)), binds


@dataclass(frozen=True)
class Outcome:
    """What a statement did: the rows it returned and the rows it affected."""

    rows: list[tuple[Any, ...]]
    rowcount: int


async def run(db: Database, org_id: uuid.UUID, statement: Executable) -> Outcome:
    """Run ``statement`` in one transaction of tenant ``org_id`` as the app role.

    The statement goes to the session's connection, below any ORM-level tenant
    criteria, so what it sees or changes is decided by the database alone.

    Raises:
        TenancyError: the translated database error.
    """
    async with db.session(org_id) as session:
        connection = await session.connection()
        result = await connection.execute(statement)
        rows = [tuple(row) for row in result.all()] if result.returns_rows else []
        return Outcome(rows, result.rowcount)


async def run_as_superuser(superuser: AsyncEngine, statement: Executable) -> Outcome:
    """Run ``statement`` bypassing RLS and roll it back: the control for a matrix case."""
    async with superuser.connect() as connection:
        result = await connection.execute(statement)
        rows = [tuple(row) for row in result.all()] if result.returns_rows else []
        outcome = Outcome(rows, result.rowcount)
        await connection.rollback()
    return outcome
