"""What reaches tenant rows around the tables: writable tables without RLS, definer
functions that read tenant tables for the app role, owners the app role can become,
and a tenant setting that every session starts with.

Each check reads ``pg_catalog`` only and returns ``Gap`` findings.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.audit.table_judgement import Gap

_WRITABLE_WITHOUT_RLS = text(
    """
    SELECT n.nspname, c.relname
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
      AND has_table_privilege(CAST(:role AS name), c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
    ORDER BY n.nspname, c.relname
    """
)

# Functions whose owner bypasses row-level security: called by the app role, they
# read every tenant's rows whatever the policies say.
_PRIVILEGED_DEFINERS = text(
    """
    SELECT n.nspname,
           p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           p.proname, o.rolname, p.prosrc
    FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace
    JOIN pg_roles AS o ON o.oid = p.proowner
    WHERE p.prosecdef AND (o.rolsuper OR o.rolbypassrls)
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND has_function_privilege(CAST(:role AS name), p.oid, 'EXECUTE')
    ORDER BY n.nspname, p.proname
    """
)

# Membership in the owner's role lets the app role SET ROLE to it (PostgreSQL 15:
# membership alone grants SET), and an owner bypasses RLS unless it is forced.
_ASSUMABLE_OWNERS = text(
    """
    SELECT DISTINCT pg_get_userbyid(c.relowner)
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_roles AS r ON r.rolname = :role
    WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p')
      AND c.relowner <> r.oid AND pg_has_role(r.oid, c.relowner, 'MEMBER')
    ORDER BY 1
    """
)


async def writable_without_rls(
    connection: AsyncConnection, role: str, schemas: Sequence[str], exempt: Collection[str]
) -> list[Gap]:
    """Return a gap for each table without RLS that ``role`` may write (``exempt`` aside)."""
    rows = await connection.execute(_WRITABLE_WITHOUT_RLS, {"role": role, "schemas": list(schemas)})
    return [
        Gap(
            f"{schema}.{name}",
            f"{role} may write it and it has no row-level security",
            "app-dml-without-rls",
        )
        for schema, name in rows
        if f"{schema}.{name}" not in exempt
    ]


async def privileged_definers(
    connection: AsyncConnection,
    role: str,
    tenant_tables: Collection[str],
    reviewed: Collection[str],
) -> list[Gap]:
    """Return a gap for each definer function owned by a role that bypasses RLS, executable
    by ``role``, whose body names a tenant table (``reviewed`` functions aside).

    The body is searched for the table names as words: a function that builds its
    SQL at run time escapes this check, which is why the owner alone is also shown.
    """
    names = {qualified.split(".", 1)[1] for qualified in tenant_tables}
    gaps = []
    for schema, signature, name, owner, body in await connection.execute(
        _PRIVILEGED_DEFINERS, {"role": role}
    ):
        if name in reviewed or f"{schema}.{name}" in reviewed:
            continue
        read = sorted(n for n in names if re.search(rf"\b{re.escape(n)}\b", body or ""))
        if read:
            gaps.append(
                Gap(
                    f"function {schema}.{signature}",
                    f"SECURITY DEFINER owned by {owner}, which bypasses RLS, reads "
                    f"{', '.join(read)} and is executable by {role}",
                    "definer-reads-tenant-table",
                )
            )
    return gaps


async def assumable_owners(
    connection: AsyncConnection, role: str, schemas: Sequence[str]
) -> list[Gap]:
    """Return a gap if ``role`` may ``SET ROLE`` to the owner of any table of ``schemas``."""
    owners = [
        row[0]
        for row in await connection.execute(
            _ASSUMABLE_OWNERS, {"role": role, "schemas": list(schemas)}
        )
    ]
    return [
        Gap(
            f"role {role}",
            f"can SET ROLE to {owner}, which owns tables of {', '.join(schemas)}",
            "app-can-become-owner",
        )
        for owner in owners
    ]


# ALTER ROLE/DATABASE ... SET gives every new session a value: a tenant bound before
# the application binds one, so a forgotten binding reads that tenant, not nothing.
_SETTING_DEFAULTS = text(
    """
    SELECT coalesce(r.rolname, '(every role)'), coalesce(d.datname, '(every database)')
    FROM pg_db_role_setting AS s
    LEFT JOIN pg_roles AS r ON r.oid = s.setrole
    LEFT JOIN pg_database AS d ON d.oid = s.setdatabase
    WHERE (s.setdatabase = 0 OR d.datname = current_database())
      AND (s.setrole = 0 OR r.rolname = :role)
      AND EXISTS (SELECT 1 FROM unnest(s.setconfig) AS c WHERE c LIKE :prefix)
    """
)


async def tenant_setting_defaults(
    connection: AsyncConnection, role: str, setting: str
) -> list[Gap]:
    """Return a gap for each default of the tenant ``setting`` that ``role``'s sessions get."""
    prefix = setting.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "=%"
    return [
        Gap(
            f"setting {setting}",
            f"has a default for role {holder} in database {database}: sessions start bound "
            "to a tenant",
            "tenant-setting-default",
        )
        for holder, database in await connection.execute(
            _SETTING_DEFAULTS, {"prefix": prefix, "role": role}
        )
    ]
