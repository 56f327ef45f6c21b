"""Read what the audit needs from ``pg_catalog``, as plain frozen records.

Every query is read-only and takes its values as bind parameters. The one
exception to "read-only" is ``render_predicates``: it lets Postgres render the
expected tenant predicate itself, on a probe table inside a savepoint that is
always rolled back (the same compare-by-rendering approach alembic-utils uses).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

#: ``pg_policy.polcmd`` codes and the command names ``CREATE POLICY`` uses.
_POLICY_COMMANDS = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}

# Objects that belong to an extension (btree_gin, ...) are the extension's business.
_NOT_EXTENSION_MEMBER = """
    NOT EXISTS (
        SELECT 1 FROM pg_depend AS d
        WHERE d.classid = CAST(:catalog AS regclass) AND d.objid = {oid} AND d.deptype = 'e'
    )
"""

# The same for a relation, in a statement whose :catalog names another catalog (an
# extension's own views, such as Citus's citus_tables, are granted to everyone).
_NOT_EXTENSION_RELATION = _NOT_EXTENSION_MEMBER.replace(":catalog", "'pg_class'")


@dataclass(frozen=True)
class Table:
    """A table of the audited schema and its row-level-security switches."""

    schema: str
    name: str
    rls_enabled: bool
    rls_forced: bool
    #: Column name -> its type as ``format_type`` renders it.
    column_types: dict[str, str]
    #: ``schema.table`` of the parent, for a partition or an inheritance child.
    parent: str | None = None

    @property
    def columns(self) -> frozenset[str]:
        """Return the column names."""
        return frozenset(self.column_types)

    @property
    def qualified(self) -> str:
        """Return ``schema.table`` for display."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Policy:
    """One row-level-security policy, with its expressions as Postgres renders them."""

    schema: str
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

    schema: str
    table: str
    name: str
    columns: tuple[str | None, ...]
    unique: bool


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key and the column pairs it compares."""

    schema: str
    table: str
    name: str
    columns: tuple[str, ...]
    ref_schema: str
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


#: The tenant column's name on the probe table that renders the predicates.
PROBE_COLUMN = "tenancy_tenant_column"


@dataclass(frozen=True)
class RenderedPredicates:
    """Postgres's renderings of the accepted tenant predicates, on ``PROBE_COLUMN``."""

    wrapped: frozenset[str]
    bare: frozenset[str]


_SCHEMAS = text(
    f"""
    SELECT n.nspname FROM pg_namespace AS n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND {_NOT_EXTENSION_MEMBER.format(oid="n.oid")}
    ORDER BY n.nspname
    """
)

_TABLES = text(
    f"""
    SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum) AS columns,
           ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum) AS types,
           (SELECT pn.nspname || '.' || pc.relname FROM pg_inherits AS i
            JOIN pg_class AS pc ON pc.oid = i.inhparent
            JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace
            WHERE i.inhrelid = c.oid LIMIT 1) AS parent
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p')
      AND {_NOT_EXTENSION_MEMBER.format(oid="c.oid")}
    ORDER BY n.nspname, c.relname
    """
)

_POLICIES = text(
    """
    SELECT n.nspname, c.relname, p.polname, CAST(p.polcmd AS text), p.polpermissive,
           ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'public' ELSE pg_get_userbyid(r.oid)::text END
                 FROM unnest(p.polroles) AS r(oid)) AS roles,
           pg_get_expr(p.polqual, p.polrelid) AS using_expr,
           pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
    FROM pg_policy AS p
    JOIN pg_class AS c ON c.oid = p.polrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas)
    ORDER BY n.nspname, c.relname, p.polname
    """
)

# Key columns only (indnkeyatts): INCLUDE columns take no part in uniqueness.
_INDEXES = text(
    """
    SELECT n.nspname, c.relname, ic.relname AS index_name, i.indisunique,
           ARRAY(SELECT a.attname::text
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE k.ord <= i.indnkeyatts
                 ORDER BY k.ord) AS columns
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas)
    ORDER BY n.nspname, c.relname, ic.relname
    """
)

_FOREIGN_KEYS = text(
    """
    SELECT n.nspname, c.relname, con.conname, rn.nspname AS ref_schema, rc.relname AS ref_table,
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
    JOIN pg_namespace AS rn ON rn.oid = rc.relnamespace
    WHERE n.nspname = ANY(:schemas) AND con.contype = 'f'
    ORDER BY n.nspname, c.relname, con.conname
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
                 WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                   AND {_NOT_EXTENSION_RELATION.format(oid="c.oid")}
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


async def read_schemas(connection: AsyncConnection) -> tuple[str, ...]:
    """Return every schema that is neither a system schema nor an extension's."""
    rows = await connection.execute(_SCHEMAS, {"catalog": "pg_namespace"})
    return tuple(r[0] for r in rows)


async def read_tables(connection: AsyncConnection, schemas: Sequence[str]) -> list[Table]:
    """Return the ordinary and partitioned tables of ``schemas``."""
    rows = await connection.execute(_TABLES, {"schemas": list(schemas), "catalog": "pg_class"})
    return [Table(r[0], r[1], r[2], r[3], dict(zip(r[4], r[5], strict=True)), r[6]) for r in rows]


async def read_policies(connection: AsyncConnection, schemas: Sequence[str]) -> list[Policy]:
    """Return the policies on tables of ``schemas``, expressions rendered by Postgres."""
    rows = await connection.execute(_POLICIES, {"schemas": list(schemas)})
    return [
        Policy(r[0], r[1], r[2], _POLICY_COMMANDS[r[3]], r[4], tuple(r[5]), r[6], r[7])
        for r in rows
    ]


async def read_indexes(connection: AsyncConnection, schemas: Sequence[str]) -> list[Index]:
    """Return the indexes on tables of ``schemas`` (primary keys included)."""
    rows = await connection.execute(_INDEXES, {"schemas": list(schemas)})
    return [Index(r[0], r[1], r[2], tuple(r[4]), r[3]) for r in rows]


async def read_foreign_keys(
    connection: AsyncConnection, schemas: Sequence[str]
) -> list[ForeignKey]:
    """Return the foreign keys declared on tables of ``schemas``."""
    rows = await connection.execute(_FOREIGN_KEYS, {"schemas": list(schemas)})
    return [ForeignKey(r[0], r[1], r[2], tuple(r[5]), r[3], r[4], tuple(r[6])) for r in rows]


async def read_role(connection: AsyncConnection, role: str, schemas: Sequence[str]) -> Role | None:
    """Return ``role``'s attributes, the tables of ``schemas`` it has any privilege on, and
    the ``SECURITY DEFINER`` functions it may execute."""
    params = {"role": role, "schemas": list(schemas), "catalog": "pg_proc"}
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
    connection: AsyncConnection, schema: str, type_sql: str, setting: str
) -> RenderedPredicates:
    """Return how Postgres renders the accepted forms of the tenant predicate.

    The forms are ``column = <setting read>`` for the usual ways of reading
    ``setting`` (with or without ``missing_ok``, with or without ``nullif(.., '')``,
    cast to ``type_sql`` or not), each bare and wrapped in ``(SELECT ...)``. The
    column is named ``PROBE_COLUMN`` on the probe table; callers compare with the
    table's column name put in its place. The probe table and its policies exist
    only inside a savepoint that is rolled back; real tables are not locked.
    """
    quote = connection.dialect.identifier_preparer.quote
    probe = f"{quote(schema)}.{quote(f'tenancy_audit_probe_{uuid.uuid4().hex}')}"
    forms = _setting_reads(setting, type_sql)
    savepoint = await connection.begin_nested()
    try:
        # type_sql comes from format_type() in the catalog, never from input.
        await connection.exec_driver_sql(f"CREATE TABLE {probe} ({PROBE_COLUMN} {type_sql})")
        for number, (read, is_wrapped) in enumerate(forms):
            expression = f"(SELECT {read})" if is_wrapped else read
            try:
                async with connection.begin_nested():
                    await connection.exec_driver_sql(
                        f"CREATE POLICY p{number} ON {probe} USING ({PROBE_COLUMN} = {expression})"
                    )
            except DBAPIError:
                continue  # a form that does not type-check for this column type
        rows = await connection.execute(
            text(
                "SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy "
                "WHERE polrelid = CAST(:probe AS regclass)"
            ),
            {"probe": probe},
        )
        wrapped: set[str] = set()
        bare: set[str] = set()
        for name, rendered in rows:
            (wrapped if forms[int(name[1:])][1] else bare).add(rendered)
        return RenderedPredicates(frozenset(wrapped), frozenset(bare))
    finally:
        await savepoint.rollback()


def _setting_reads(setting: str, type_sql: str) -> list[tuple[str, bool]]:
    # Only constants reach this DDL: the setting is a quoted literal, the type from
    # the catalog. Each read is tried bare and wrapped in (SELECT ...).
    literal = "'" + setting.replace("'", "''") + "'"
    reads = []
    for call in (f"current_setting({literal}, true)", f"current_setting({literal})"):
        for value in (f"nullif({call}, '')", call):
            reads += [f"{value}::{type_sql}", value]
    return [(read, wrapped) for read in reads for wrapped in (True, False)]
