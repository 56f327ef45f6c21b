"""On a Citus coordinator: is every table laid out the way isolation and routing need?

A tenant table must be distributed by its tenant column and co-located with the
tenant root (so a tenant's rows and the foreign keys between them stay on one
node), the root distributed by its own id, the global and shared tables
replicated as reference tables, and ``SET LOCAL`` forwarded to the workers
(``citus.propagate_set_commands = 'local'`` for the database or the app role):
without it the workers never see the tenant. The owner of each definer function
the app role runs must be able to log in: Citus reaches the workers as the
function's owner, so otherwise every resolver fails. Nothing is checked on
plain PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.audit.table_judgement import Gap
from tenancy.audit.table_kind import TableKind
from tenancy.schema.citus import has_citus


@dataclass(frozen=True)
class Placement:
    """How Citus holds one table: ``hash`` on ``column``, or ``reference``."""

    method: str
    column: str | None
    colocation: int


async def distribution_gaps(
    connection: AsyncConnection,
    kinds: Mapping[str, TableKind],
    tenant_columns: Mapping[str, str],
    app_role: str,
    reference: frozenset[str] = frozenset(),
) -> list[Gap]:
    """Return the layout gaps of a Citus coordinator (none without Citus).

    ``kinds`` maps ``schema.table`` to its kind; ``tenant_columns`` each tenant
    table and the root to the column holding its tenant; ``reference`` names the
    tenant tables that belong on every node (lookups keyed without the tenant).
    """
    if not await connection.run_sync(has_citus):
        return []
    placements = await _placements(connection)
    gaps = [] if await _propagates(connection, app_role) else [_NOT_PROPAGATED]
    gaps += [
        Gap(
            f"function {function}",
            f"its owner {owner} cannot log in: Citus runs its statements on the workers as {owner}",
            "definer-owner-cannot-log-in",
        )
        for function, owner in await _definers_without_login(connection, app_role)
    ]
    roots = [q for q, kind in kinds.items() if kind is TableKind.ROOT]
    root = placements.get(roots[0]) if roots else None
    for table, kind in sorted(kinds.items()):
        placed = placements.get(table)
        if table in reference or kind in (TableKind.GLOBAL, TableKind.SHARED):
            if placed is None or placed.method != "reference":
                gaps.append(Gap(table, "is not a reference table", "not-reference"))
        elif kind in (TableKind.TENANT, TableKind.ROOT):
            column = tenant_columns[table]
            if placed is None or placed.method != "hash":
                gaps.append(Gap(table, f"is not distributed by {column}", "not-distributed"))
            elif placed.column != column:
                gaps.append(
                    Gap(
                        table, f"is distributed by {placed.column}, not {column}", "not-distributed"
                    )
                )
            elif root is not None and placed.colocation != root.colocation:
                gaps.append(Gap(table, f"is not co-located with {roots[0]}", "not-colocated"))
    return gaps


_NOT_PROPAGATED = Gap(
    "database",
    "citus.propagate_set_commands is not 'local' for the database or the app role: "
    "the workers never see SET LOCAL app.org_id",
    "set-not-propagated",
)


async def _placements(connection: AsyncConnection) -> dict[str, Placement]:
    rows = await connection.execute(
        text(
            "SELECT n.nspname || '.' || c.relname, p.partmethod::text,"
            " CASE WHEN p.partkey IS NOT NULL"
            " THEN column_to_column_name(p.logicalrelid, p.partkey) END, p.colocationid"
            " FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
        )
    )
    methods = {"h": "hash", "n": "reference"}
    return {
        name: Placement(methods.get(method, method), column, colocation)
        for name, method, column, colocation in rows
    }


async def _propagates(connection: AsyncConnection, app_role: str) -> bool:
    # Database-wide (setrole = 0) or for the app role, in this database or all.
    found = await connection.scalar(
        text(
            "SELECT 1 FROM pg_db_role_setting s"
            " LEFT JOIN pg_roles r ON r.oid = s.setrole"
            " WHERE (s.setdatabase = 0 OR s.setdatabase ="
            "   (SELECT oid FROM pg_database WHERE datname = current_database()))"
            " AND (s.setrole = 0 OR r.rolname = :role)"
            " AND 'citus.propagate_set_commands=local' = ANY(s.setconfig)"
        ),
        {"role": app_role},
    )
    return found is not None


async def _definers_without_login(
    connection: AsyncConnection, app_role: str
) -> list[tuple[str, str]]:
    rows = await connection.execute(
        text(
            "SELECT p.oid::regprocedure::text, o.rolname FROM pg_proc p"
            " JOIN pg_roles o ON o.oid = p.proowner"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE p.prosecdef AND NOT o.rolcanlogin AND NOT o.rolsuper"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'citus', 'citus_internal')"
            " AND has_function_privilege(:role, p.oid, 'EXECUTE')"
            " ORDER BY 1"
        ),
        {"role": app_role},
    )
    return [(function, owner) for function, owner in rows]
