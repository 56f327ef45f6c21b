"""Behavioural checks: acting as the application role, can one tenant reach another's row?

For each tenant table, in one transaction that is always rolled back:

1. As the connecting superuser, switch off foreign-key and user triggers
   (``session_replication_role = replica``) and drop the table's CHECK constraints,
   so that two synthetic rows can be written without parents or meaningful
   values: one for tenant A and one for tenant B (a superuser bypasses RLS).
   Tenants and values are of each column's own type, fresh per row.
2. ``SET LOCAL ROLE`` to the application role; count the rows with no tenant
   bound (fail closed: none visible, or the policy errors), then bind tenant A
   (the configured setting, or the configured SQL template).
3. Run each probe in its own savepoint, so an expected refusal does not end the
   transaction.

Only row-level security and privileges are left to refuse the probes, which is
what they test. Nothing is committed. The dropped constraints hold an ACCESS
EXCLUSIVE lock on the table until the rollback (``lock_timeout`` bounds the
wait), so run this against a CI or staging database, not a busy production one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.testing.partition_values import routable_rows
from tenancy.testing.result import ISOLATION, CheckOptions, CheckResult, TenantTable, failed, passed
from tenancy.testing.value import Column, synthetic_value

#: SQLSTATE insufficient_privilege: refused by a policy or by missing grants.
REFUSED = "42501"
#: What a SQLSTATE met while setting up or probing means here, in words.
_CAUSES = {
    "22P02": "a value does not parse as the column's type",
    "23505": "a unique key rejected a synthetic row",
    "23514": "no partition or CHECK constraint accepts a synthetic row",
    "23502": "a NOT NULL column has no synthetic value",
    "42501": "refused by row-level security or privileges",
    "42704": "an object the binding names does not exist",
    "55P03": "a lock on the table was not granted in time",
}

ISOLATION_CHECKS: tuple[str, ...] = (
    "fail_closed",
    "cross_tenant_select",
    "cross_tenant_update",
    "cross_tenant_delete",
    "foreign_insert",
    "move_to_other_tenant",
)

_COLUMNS = text(
    """
    SELECT a.attname,
           format_type(a.atttypid, a.atttypmod) AS type_sql,
           CAST(coalesce(b.typcategory, t.typcategory) AS text) AS category,
           CAST(coalesce(b.typname, t.typname) AS text) AS type_name,
           (SELECT e.enumlabel FROM pg_enum AS e
            WHERE e.enumtypid = coalesce(b.oid, t.oid)
            ORDER BY e.enumsortorder LIMIT 1) AS first_label,
           a.attname = :column AS is_tenant
    FROM pg_attribute AS a
    JOIN pg_type AS t ON t.oid = a.atttypid
    LEFT JOIN pg_type AS b ON t.typtype = 'd' AND b.oid = t.typbasetype
    WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped
      AND (a.attname = :column
           OR a.attname = ANY(CAST(:keys AS text[]))
           OR (a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''))
    ORDER BY a.attnum
    """
)
_CHECK_CONSTRAINTS = text(
    "SELECT conname FROM pg_constraint WHERE conrelid = :oid AND contype = 'c' AND conislocal"
)
# set_config() rather than SET: it takes the tenant as a bind parameter. (The library
# itself uses the SET LOCAL literal for Citus; the policies read the same setting.)
_SET_TENANT = text("SELECT set_config(:setting, :tenant, true)")
_IS_PARTITIONED = text("SELECT relkind = 'p' FROM pg_class WHERE oid = :oid")
_TABLE_OID = text(
    "SELECT c.oid FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE n.nspname = :schema AND c.relname = :table"
)
# The partition key's plain columns (an expression key has attnum 0: left to chance).
_PARTITION_KEYS = text(
    """
    SELECT a.attname
    FROM pg_partitioned_table AS p
    CROSS JOIN LATERAL unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute AS a ON a.attrelid = p.partrelid AND a.attnum = k.attnum
    WHERE p.partrelid = :oid
    ORDER BY k.n
    """
)
_PARTITION_BOUNDS = text(
    """
    SELECT pg_get_expr(c.relpartbound, c.oid)
    FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
    WHERE i.inhparent = :oid
    ORDER BY c.relname
    """
)


@dataclass(frozen=True)
class _Statements:
    """The SQL of one table's probes; identifiers quoted by the dialect, values bound."""

    insert: TextClause
    count: TextClause
    update_where: TextClause
    delete_where: TextClause
    move: TextClause


async def isolation_checks(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions
) -> list[CheckResult]:
    """Probe ``table`` as the application role; return one result per isolation check."""
    transaction = await connection.begin()
    partitioned = False
    try:
        partitioned = bool((await connection.execute(_IS_PARTITIONED, {"oid": table.oid})).scalar())
        routes = await _routes(connection, table) if partitioned else []
        keys = sorted({key for route in routes for key in route})
        columns = [
            Column(*row)
            for row in await connection.execute(
                _COLUMNS, {"oid": table.oid, "column": table.tenant_column, "keys": keys}
            )
        ]
        statements = _statements(connection, table, columns, table.tenant_column)
        tenant_a, tenant_b = _two_tenants(table, columns, routes)
        # Partition keys other than the tenant take a value their partitions accept.
        routed = next((r for r in routes if table.tenant_column not in r), {})

        def values() -> dict[str, str]:
            # Fresh per row: two rows never collide under a unique index, not even
            # under a global one (a public token).
            return {
                f"v{i}": routed.get(c.name) or synthetic_value(table, c)
                for i, c in enumerate(columns)
                if not c.is_tenant
            }

        await _prepare_rows(connection, table, statements, values, (tenant_a, tenant_b))
        members = await _members(connection, table, options, (tenant_a, tenant_b))
        quote = connection.dialect.identifier_preparer.quote
        await connection.exec_driver_sql(f"SET LOCAL ROLE {quote(options.app_role)}")
        closed = await _fail_closed(connection, table, statements, tenant_a)
        binding = _Binding(options, members)
        await binding.bind(connection, tenant_a)
        results = await _probe(connection, table, statements, values(), binding, tenant_a, tenant_b)
        return [closed, *results]
    except (DBAPIError, ValueError) as exc:
        # The probe could not be set up: every check of the table fails, with the reason.
        reason = f"probe could not run: {_describe(exc, partitioned=partitioned)}"
        return [failed(ISOLATION, table.qualified, check, reason) for check in ISOLATION_CHECKS]
    finally:
        await transaction.rollback()


async def _members(
    connection: AsyncConnection,
    table: TenantTable,
    options: CheckOptions,
    tenants: tuple[str, str],
) -> dict[str, str]:
    """Give each probe tenant a new user who is a member of it (membership-based schemes)."""
    where = options.config.membership_table
    if where is None:
        return {}
    schema, name, user_column, tenant_column = where
    found = await connection.execute(_TABLE_OID, {"schema": schema, "table": name})
    oid = found.scalar()
    if oid is None:
        raise ValueError(f"membership table {schema}.{name} does not exist")
    membership = TenantTable(schema=schema, name=name, oid=oid, tenant_column=tenant_column)
    columns = [
        Column(*row)
        for row in await connection.execute(
            _COLUMNS, {"oid": oid, "column": tenant_column, "keys": [user_column]}
        )
    ]
    statements = _statements(connection, membership, columns, tenant_column)
    members: dict[str, str] = {}
    for tenant in tenants:
        values = {f"v{i}": synthetic_value(membership, c) for i, c in enumerate(columns)}
        user = next(values[f"v{i}"] for i, c in enumerate(columns) if c.name == user_column)
        await connection.execute(statements.insert, {**values, "tenant": tenant})
        members[tenant] = user
    return members


async def _routes(connection: AsyncConnection, table: TenantTable) -> list[dict[str, str]]:
    keys = list((await connection.execute(_PARTITION_KEYS, {"oid": table.oid})).scalars())
    bounds = list((await connection.execute(_PARTITION_BOUNDS, {"oid": table.oid})).scalars())
    return routable_rows(keys, bounds)


def _two_tenants(
    table: TenantTable, columns: list[Column], routes: list[dict[str, str]]
) -> tuple[str, str]:
    # Two distinct tenants of the tenant column's own type (uuid, integer, text, ...).
    tenant = next((c for c in columns if c.is_tenant), None)
    if tenant is None:
        raise ValueError(f"{table.qualified} has no column {table.tenant_column}")
    # Partitioned by tenant: two tenants its partitions accept.
    listed = list(dict.fromkeys(r[tenant.name] for r in routes if tenant.name in r))
    if len(listed) >= 2:
        return listed[0], listed[1]
    first = synthetic_value(table, tenant)
    second = synthetic_value(table, tenant)
    while second == first:
        second = synthetic_value(table, tenant)
    return first, second


class _Binding:
    """Makes a tenant current the way the service does: a setting, or a SQL template."""

    def __init__(self, options: CheckOptions, members: dict[str, str] | None = None) -> None:
        self.setting = options.config.tenant_setting
        self.template = options.config.tenant_binding
        # Membership-based: the user who is a member of each probe tenant.
        self.members = members or {}

    async def bind(self, connection: AsyncConnection, tenant: str) -> None:
        """Make ``tenant`` current (or, membership-based, a member of it) for the transaction."""
        tenant = self.members.get(tenant, tenant)
        if self.template is None:
            await connection.execute(_SET_TENANT, {"setting": self.setting, "tenant": tenant})
            return
        # The template is the operator's configuration; the tenant is our own synthetic
        # value, written as a quoted literal (a template may use it where no bind
        # parameter is allowed, such as SET).
        literal = "'" + tenant.replace("'", "''") + "'"
        await connection.exec_driver_sql(self.template.replace("{tenant}", literal))


async def _fail_closed(
    connection: AsyncConnection, table: TenantTable, statements: _Statements, tenant: str
) -> CheckResult:
    # With no tenant bound, a policy must show nothing; one that errors (a cast of the
    # empty setting, say) refuses the read, which is closed too.
    rows, state = await _attempt(connection, statements.count, {"tenant": tenant})
    if state is None and rows[0][0]:
        return failed(
            ISOLATION,
            table.qualified,
            "fail_closed",
            f"with no tenant, {rows[0][0]} row(s) are visible",
        )
    note = "" if state is None else f"refused with no tenant: {_cause(state)}"
    return passed(ISOLATION, table.qualified, "fail_closed", note)


async def _prepare_rows(
    connection: AsyncConnection,
    table: TenantTable,
    statements: _Statements,
    values: Callable[[], dict[str, str]],
    tenants: tuple[str, str],
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    await connection.execute(text("SET LOCAL lock_timeout = '5s'"))
    await connection.execute(text("SET LOCAL session_replication_role = replica"))
    for (name,) in (await connection.execute(_CHECK_CONSTRAINTS, {"oid": table.oid})).all():
        await connection.exec_driver_sql(
            f"ALTER TABLE {quote(table.schema)}.{quote(table.name)} DROP CONSTRAINT {quote(name)}"
        )
    for tenant in tenants:
        await connection.execute(statements.insert, {**values(), "tenant": tenant})


async def _probe(
    connection: AsyncConnection,
    table: TenantTable,
    statements: _Statements,
    values: dict[str, str],
    binding: _Binding,
    tenant_a: str,
    tenant_b: str,
) -> list[CheckResult]:
    subject = table.qualified

    def verdict(check: str, problem: str | None, note: str = "") -> CheckResult:
        if problem is None:
            return passed(ISOLATION, subject, check, note)
        return failed(ISOLATION, subject, check, problem)

    results: list[CheckResult] = []
    rows, state = await _attempt(connection, statements.count, {"tenant": tenant_a})
    if state == REFUSED:
        results.append(verdict("cross_tenant_select", None, "SELECT not granted"))
    elif state is not None:
        results.append(verdict("cross_tenant_select", f"count failed: {_cause(state)}"))
    else:
        total, own = rows[0]
        problem = None
        if total != own:
            problem = f"tenant A sees {total - own} row(s) of another tenant"
        elif own != 1:
            problem = "tenant A cannot see its own row, so the probe proves nothing"
        results.append(verdict("cross_tenant_select", problem))

    for check, statement in (
        ("cross_tenant_update", statements.update_where),
        ("cross_tenant_delete", statements.delete_where),
    ):
        count, state = await _affected(connection, statement, {"tenant": tenant_b})
        results.append(
            verdict(check, _nothing_touched(count, state, "of another tenant were changed"))
        )

    _, state = await _affected(connection, statements.insert, {**values, "tenant": tenant_b})
    results.append(
        verdict(
            "foreign_insert",
            None
            if state == REFUSED
            else "a row for another tenant was "
            + ("written" if state is None else f"not refused by RLS but met {_cause(state)}"),
        )
    )
    count, state = await _affected(
        connection, statements.move, {"tenant": tenant_b, "own": tenant_a}
    )
    results.append(
        verdict(
            "move_to_other_tenant", _nothing_touched(count, state, "were moved to another tenant")
        )
    )
    return results


def _nothing_touched(count: int | None, state: str | None, what: str) -> str | None:
    # Refused (by a policy or for want of a grant) or no row reached: both isolate.
    if state == REFUSED or (state is None and count == 0):
        return None
    if state is None:
        return f"{count} row(s) {what}"
    return f"unexpected error: {_cause(state)}"


async def _attempt(
    connection: AsyncConnection, statement: TextClause, params: dict[str, Any]
) -> tuple[list[Any], str | None]:
    try:
        async with connection.begin_nested():
            return list((await connection.execute(statement, params)).all()), None
    except DBAPIError as exc:
        return [], sqlstate(exc)


async def _affected(
    connection: AsyncConnection, statement: TextClause, params: dict[str, Any]
) -> tuple[int | None, str | None]:
    try:
        async with connection.begin_nested():
            return (await connection.execute(statement, params)).rowcount, None
    except DBAPIError as exc:
        return None, sqlstate(exc)


def sqlstate(exc: DBAPIError) -> str | None:
    """Return the SQLSTATE the server reported for ``exc``, if any."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code is not None else None


def _cause(state: str | None) -> str:
    return f"{_CAUSES.get(state or '', 'database error')} (SQLSTATE {state})"


def _describe(exc: Exception, *, partitioned: bool) -> str:
    if not isinstance(exc, DBAPIError):
        return str(exc)
    state = sqlstate(exc)
    if state == "23514" and partitioned:
        # Said plainly for a partitioned table: its synthetic rows route by value.
        return f"no partition accepts a synthetic row (SQLSTATE {state})"
    return _cause(state)


def _statements(
    connection: AsyncConnection, table: TenantTable, columns: list[Column], tenant_column: str
) -> _Statements:
    quote = connection.dialect.identifier_preparer.quote
    target = f"{quote(table.schema)}.{quote(table.name)}"
    tenant = next((c for c in columns if c.is_tenant), None)
    if tenant is None:
        raise ValueError(f"{table.qualified} has no column {tenant_column}")
    # format_type() renders the column's type as SQL, quoted by the server: it comes
    # from the catalog, not from input. Every value is bound as text and cast to it.
    key = quote(tenant.name)
    own = f"CAST(CAST(:tenant AS text) AS {tenant.type_sql})"
    names = ", ".join(quote(c.name) for c in columns)
    casts = ", ".join(
        own if c.is_tenant else f"CAST(CAST(:v{i} AS text) AS {c.type_sql})"
        for i, c in enumerate(columns)
    )
    return _Statements(
        insert=text(f"INSERT INTO {target} ({names}) VALUES ({casts})"),
        count=text(f"SELECT count(*), count(*) FILTER (WHERE {key} = {own}) FROM {target}"),
        update_where=text(f"UPDATE {target} SET {key} = {key} WHERE {key} = {own}"),
        delete_where=text(f"DELETE FROM {target} WHERE {key} = {own}"),
        move=text(
            f"UPDATE {target} SET {key} = {own} "
            f"WHERE {key} = CAST(CAST(:own AS text) AS {tenant.type_sql})"
        ),
    )
