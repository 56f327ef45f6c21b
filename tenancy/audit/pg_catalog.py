"""Read what the audit needs from ``pg_catalog``, as plain frozen records.

Every query is read-only and takes its values as bind parameters. The one
exception to "read-only" is ``render_predicates``: it lets Postgres render the
expected tenant predicate itself, on a probe table inside a savepoint that is
always rolled back (the same compare-by-rendering approach alembic-utils uses).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.schema.declarative import TENANT_SETTING_SQL

#: ``pg_policy.polcmd`` codes and the command names ``CREATE POLICY`` uses.
_POLICY_COMMANDS = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}

# Objects that belong to an extension (btree_gin, ...) are the extension's business.
_NOT_EXTENSION_MEMBER = """
    NOT EXISTS (
        SELECT 1 FROM pg_depend AS d
        WHERE d.classid = CAST(:catalog AS regclass) AND d.objid = {oid} AND d.deptype = 'e'
    )
"""


@dataclass(frozen=True)
class Table:
    """A table of the audited schema and its row-level-security switches."""

    name: str
    rls_enabled: bool
    rls_forced: bool
    columns: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """One row-level-security policy, with its expressions as Postgres renders them."""

    table: str
    name: str
    command: str
    permissive: bool
    roles: tuple[str, ...]
    using: str | None
    check: str | None


@dataclass(frozen=True)
class Index:
    """An index; ``columns`` are its key columns (``None`` for an expression)."""

    table: str
    name: str
    columns: tuple[str | None, ...]
    unique: bool


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key and the column pairs it compares."""

    table: str
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    """A role's attributes that decide whether row-level security applies to it."""

    name: str
    superuser: bool
    bypassrls: bool
    privileged_member: bool
    owned_objects: int
    tables: tuple[str, ...]
    #: ``SECURITY DEFINER`` functions it may execute: each runs with its owner's rights.
    definers: tuple[str, ...]


@dataclass(frozen=True)
class View:
    """A view or materialized view outside the system schemas."""

    schema: str
    name: str
    materialized: bool
    security_invoker: bool


@dataclass(frozen=True)
class DefinerFunction:
    """A ``SECURITY DEFINER`` function and the ``search_path`` it pins (if any)."""

    schema: str
    signature: str
    owner: str
    search_path: str | None


_TABLES = text(
    f"""
    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
           ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
      AND {_NOT_EXTENSION_MEMBER.format(oid="c.oid")}
    ORDER BY c.relname
    """
)

_POLICIES = text(
    """
    SELECT c.relname, p.polname, CAST(p.polcmd AS text), p.polpermissive,
           ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'public' ELSE pg_get_userbyid(r.oid)::text END
                 FROM unnest(p.polroles) AS r(oid)) AS roles,
           pg_get_expr(p.polqual, p.polrelid) AS using_expr,
           pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
    FROM pg_policy AS p
    JOIN pg_class AS c ON c.oid = p.polrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema
    ORDER BY c.relname, p.polname
    """
)

# Key columns only (indnkeyatts): INCLUDE columns take no part in uniqueness.
_INDEXES = text(
    """
    SELECT c.relname, ic.relname AS index_name, i.indisunique,
           ARRAY(SELECT a.attname::text
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE k.ord <= i.indnkeyatts
                 ORDER BY k.ord) AS columns
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema
    ORDER BY c.relname, ic.relname
    """
)

_FOREIGN_KEYS = text(
    """
    SELECT c.relname, con.conname, rc.relname AS ref_table,
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS columns,
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS ref_columns
    FROM pg_constraint AS con
    JOIN pg_class AS c ON c.oid = con.conrelid
    JOIN pg_class AS rc ON rc.oid = con.confrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND con.contype = 'f'
    ORDER BY c.relname, con.conname
    """
)

# pg_shdepend records ownership of every object kind (tables, functions, types,
# schemas, ...) in this database and of shared objects (dbid 0).
_ROLE = text(
    f"""
    SELECT r.rolname, r.rolsuper, r.rolbypassrls,
           EXISTS (
               SELECT 1 FROM pg_roles AS m
               WHERE m.oid <> r.oid AND pg_has_role(r.oid, m.oid, 'MEMBER')
                 AND (m.rolsuper OR m.rolbypassrls)
           ) AS privileged_member,
           (SELECT count(*) FROM pg_shdepend AS d
            WHERE d.refclassid = CAST('pg_authid' AS regclass) AND d.refobjid = r.oid
              AND d.deptype = 'o'
              AND d.dbid IN (0, (SELECT oid FROM pg_database
                                 WHERE datname = current_database()))) AS owned_objects,
           ARRAY(SELECT c.relname::text FROM pg_class AS c
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace
                 WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                   AND has_table_privilege(r.oid, c.oid,
                       'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                 ORDER BY c.relname) AS tables,
           ARRAY(SELECT p.proname::text FROM pg_proc AS p
                 JOIN pg_namespace AS n ON n.oid = p.pronamespace
                 WHERE p.prosecdef
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg\\_%'
                   AND {_NOT_EXTENSION_MEMBER.format(oid="p.oid")}
                   AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                 ORDER BY p.proname) AS definers
    FROM pg_roles AS r
    WHERE r.rolname = :role
    """
)

_VIEWS = text(
    f"""
    SELECT n.nspname, c.relname, c.relkind = 'm' AS materialized,
           EXISTS (SELECT 1 FROM pg_options_to_table(c.reloptions) AS o
                   WHERE o.option_name = 'security_invoker'
                     AND lower(o.option_value) IN ('true', 'on', '1', 'yes', 't', 'y'))
               AS security_invoker
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND {_NOT_EXTENSION_MEMBER.format(oid="c.oid")}
    ORDER BY n.nspname, c.relname
    """
)

_DEFINER_FUNCTIONS = text(
    f"""
    SELECT n.nspname,
           p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature,
           pg_get_userbyid(p.proowner) AS owner,
           (SELECT substr(cfg, length('search_path=') + 1) FROM unnest(p.proconfig) AS cfg
            WHERE cfg LIKE 'search\\_path=%' LIMIT 1) AS search_path
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE p.prosecdef
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND {_NOT_EXTENSION_MEMBER.format(oid="p.oid")}
    ORDER BY n.nspname, p.proname
    """
)


async def read_tables(connection: AsyncConnection, schema: str) -> list[Table]:
    """Return the ordinary and partitioned tables of ``schema``."""
    rows = await connection.execute(_TABLES, {"schema": schema, "catalog": "pg_class"})
    return [Table(r[0], r[1], r[2], frozenset(r[3])) for r in rows]


async def read_policies(connection: AsyncConnection, schema: str) -> list[Policy]:
    """Return the policies on tables of ``schema``, expressions rendered by Postgres."""
    rows = await connection.execute(_POLICIES, {"schema": schema})
    return [Policy(r[0], r[1], _POLICY_COMMANDS[r[2]], r[3], tuple(r[4]), r[5], r[6]) for r in rows]


async def read_indexes(connection: AsyncConnection, schema: str) -> list[Index]:
    """Return the indexes on tables of ``schema`` (primary keys included)."""
    rows = await connection.execute(_INDEXES, {"schema": schema})
    return [Index(r[0], r[1], tuple(r[3]), r[2]) for r in rows]


async def read_foreign_keys(connection: AsyncConnection, schema: str) -> list[ForeignKey]:
    """Return the foreign keys declared on tables of ``schema``."""
    rows = await connection.execute(_FOREIGN_KEYS, {"schema": schema})
    return [ForeignKey(r[0], r[1], tuple(r[3]), r[2], tuple(r[4])) for r in rows]


async def read_role(connection: AsyncConnection, role: str, schema: str) -> Role | None:
    """Return ``role``'s attributes, the tables of ``schema`` it has any privilege on, and
    the ``SECURITY DEFINER`` functions it may execute."""
    params = {"role": role, "schema": schema, "catalog": "pg_proc"}
    row = (await connection.execute(_ROLE, params)).first()
    if row is None:
        return None
    return Role(row[0], row[1], row[2], row[3], int(row[4]), tuple(row[5]), tuple(row[6]))


async def read_views(connection: AsyncConnection) -> list[View]:
    """Return the views and materialized views outside the system schemas."""
    rows = await connection.execute(_VIEWS, {"catalog": "pg_class"})
    return [View(r[0], r[1], r[2], r[3]) for r in rows]


async def read_definer_functions(connection: AsyncConnection) -> list[DefinerFunction]:
    """Return the ``SECURITY DEFINER`` functions outside the system schemas."""
    rows = await connection.execute(_DEFINER_FUNCTIONS, {"catalog": "pg_proc"})
    return [DefinerFunction(r[0], r[1], r[2], r[3]) for r in rows]


async def render_predicates(
    connection: AsyncConnection, schema: str, columns: tuple[str, ...]
) -> dict[tuple[str, bool], str]:
    """Return how Postgres renders the tenant predicate on each of ``columns``.

    Keys are ``(column, wrapped)``: the ``(SELECT ...)``-wrapped form and the bare
    form. The probe table and its policies exist only inside a savepoint that is
    rolled back, so nothing is left behind; real tables are not locked.
    """
    quote = connection.dialect.identifier_preparer.quote
    probe = f"{quote(schema)}.{quote(f'tenancy_audit_probe_{uuid.uuid4().hex}')}"
    savepoint = await connection.begin_nested()
    try:
        definitions = ", ".join(f"{quote(column)} uuid" for column in columns)
        await connection.exec_driver_sql(f"CREATE TABLE {probe} ({definitions})")
        names: dict[str, tuple[str, bool]] = {}
        for column in columns:
            for wrapped in (True, False):
                name = f"p{len(names)}"
                names[name] = (column, wrapped)
                await connection.exec_driver_sql(
                    f"CREATE POLICY {name} ON {probe} USING "
                    f"({_tenant_predicate_sql(quote(column), wrapped=wrapped)})"
                )
        rows = await connection.execute(
            text(
                "SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy "
                "WHERE polrelid = CAST(:probe AS regclass)"
            ),
            {"probe": probe},
        )
        return {names[name]: rendered for name, rendered in rows}
    finally:
        await savepoint.rollback()


def _tenant_predicate_sql(column: str, *, wrapped: bool) -> str:
    # Only constants reach this DDL: a quoted column name and the setting expression.
    setting = f"(SELECT {TENANT_SETTING_SQL})" if wrapped else TENANT_SETTING_SQL
    return f"{column} = {setting}"
