"""Catalog checks: which tables are tenant tables, and is each one set up to isolate.

Everything here reads the system catalogs only; nothing is written.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.testing.result import (
    CATALOG,
    ROLE,
    CheckOptions,
    CheckResult,
    TenantTable,
    failed,
    passed,
)

ROLE_CHECKS: tuple[str, ...] = (
    "not_superuser",
    "no_bypassrls",
    "cannot_become_privileged",
    "owns_nothing",
)
CATALOG_CHECKS: tuple[str, ...] = (
    "rls_enabled",
    "rls_forced",
    "restrictive_guard",
    "unique_includes_tenant",
)

# Partitions are included on purpose: a partition queried directly is guarded by
# its own policies, not by its parent's. The tenant column is picked per table in
# Python (it may be overridden per table).
_TABLES = text(
    """
    SELECT c.oid, n.nspname, c.relname,
           ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND (cardinality(CAST(:schemas AS text[])) = 0 OR n.nspname = ANY(:schemas))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY n.nspname, c.relname
    """
)

_ROLE = text(
    """
    SELECT r.rolsuper,
           r.rolbypassrls,
           ARRAY(
               SELECT m.rolname FROM pg_roles AS m
               WHERE m.oid <> r.oid
                 AND pg_has_role(r.oid, m.oid, 'MEMBER')
                 AND (m.rolsuper OR m.rolbypassrls)
               ORDER BY m.rolname
           ) AS privileged_roles,
           ARRAY(
               SELECT c.oid::regclass::text FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg\\_toast%'
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                 AND pg_has_role(r.oid, c.relowner, 'MEMBER')
               ORDER BY 1
           ) AS owned
    FROM pg_roles AS r
    WHERE r.rolname = :role
    """
)

_TABLE = text(
    """
    SELECT c.relrowsecurity,
           c.relforcerowsecurity,
           EXISTS (
               SELECT 1 FROM pg_policy AS p
               WHERE p.polrelid = c.oid
                 AND NOT p.polpermissive
                 AND p.polcmd = '*'
                 AND p.polqual IS NOT NULL
                 AND EXISTS (
                     SELECT 1 FROM unnest(p.polroles) AS r(oid)
                     WHERE r.oid = 0 OR pg_has_role(CAST(:role AS name), r.oid, 'MEMBER')
                 )
           ) AS has_guard
    FROM pg_class AS c
    WHERE c.oid = :oid
    """
)

# Key columns only (INCLUDE columns do not make a value unique per tenant); an
# expression index has attnum 0 in indkey and so never counts as including it.
_UNIQUE_WITHOUT_TENANT = text(
    """
    SELECT ci.relname,
           ARRAY(SELECT a.attname::text
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                 LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE k.position <= i.indnkeyatts) AS columns
    FROM pg_index AS i
    JOIN pg_class AS ci ON ci.oid = i.indexrelid
    WHERE i.indrelid = :oid
      AND i.indisunique
      AND NOT EXISTS (
          SELECT 1
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE k.position <= i.indnkeyatts AND a.attname = :column
      )
    ORDER BY ci.relname
    """
)


async def tenant_tables(connection: AsyncConnection, options: CheckOptions) -> list[TenantTable]:
    """Return every table (partitions included) that has its tenant column.

    Tables declared global are left out, whatever their columns.
    """
    config = options.config
    rows = await connection.execute(_TABLES, {"schemas": list(config.schemas)})
    tables = []
    for oid, schema, name, columns in rows:
        column = config.column_for(schema, name)
        if column in columns and not config.is_global(schema, name):
            tables.append(TenantTable(oid=oid, schema=schema, name=name, tenant_column=column))
    return tables


async def role_checks(connection: AsyncConnection, options: CheckOptions) -> list[CheckResult]:
    """Check that row-level security applies to the application role at all."""
    role = options.app_role
    row = (await connection.execute(_ROLE, {"role": role})).one_or_none()
    if row is None:
        return [failed(ROLE, role, check, "the role does not exist") for check in ROLE_CHECKS]
    return [
        _expect(ROLE, role, "not_superuser", not row.rolsuper, "is a superuser"),
        _expect(ROLE, role, "no_bypassrls", not row.rolbypassrls, "has BYPASSRLS"),
        _expect(
            ROLE,
            role,
            "cannot_become_privileged",
            not row.privileged_roles,
            f"is a member of {', '.join(row.privileged_roles)}",
        ),
        _expect(ROLE, role, "owns_nothing", not row.owned, f"owns {', '.join(row.owned[:5])}"),
    ]


async def table_checks(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions
) -> list[CheckResult]:
    """Check RLS switched on and forced, the restrictive guard, and unique keys."""
    row = (await connection.execute(_TABLE, {"oid": table.oid, "role": options.app_role})).one()
    offending = [
        name
        for name, columns in await connection.execute(
            _UNIQUE_WITHOUT_TENANT, {"oid": table.oid, "column": table.tenant_column}
        )
        if name not in options.global_unique
        and not all(
            c is not None and options.config.is_random_key(table.schema, table.name, c)
            for c in columns
        )
    ]
    subject = table.qualified
    return [
        _expect(CATALOG, subject, "rls_enabled", row.relrowsecurity, "row-level security is off"),
        _expect(
            CATALOG, subject, "rls_forced", row.relforcerowsecurity, "RLS is not FORCEd (owner)"
        ),
        _expect(
            CATALOG,
            subject,
            "restrictive_guard",
            row.has_guard,
            "no RESTRICTIVE policy FOR ALL covers the application role",
        ),
        _expect(
            CATALOG,
            subject,
            "unique_includes_tenant",
            not offending,
            f"unique without {table.tenant_column}: {', '.join(offending)}",
        ),
    ]


def _expect(category: str, subject: str, check: str, ok: bool, problem: str) -> CheckResult:
    return passed(category, subject, check) if ok else failed(category, subject, check, problem)
