"""The probe's rows: which columns to fill and with what, for which two tenants; written, removed.

Rows are written as the connecting superuser (who bypasses RLS) with foreign-key
and user triggers off (``session_replication_role = replica``), so they need no
parents and set nothing else in motion. Tenants and values are of each column's
own type, fresh per row. Two ways to hold them (``tenancy.testing.probe`` picks):

* rolled back (the default on plain PostgreSQL): inside the probe's one
  transaction, with the table's CHECK constraints dropped there too, so only
  row-level security and privileges are left to refuse the attacks;
* committed (a Citus coordinator): in a transaction of their own that commits,
  with the CHECK constraints kept and values they accept (``check_values``),
  for two tenants that have no row in the table, so that ``remove`` (deleting
  those tenants' rows) can only ever delete the probe's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.testing.attack import Statements, statements
from tenancy.testing.check_values import Maker, check_makers
from tenancy.testing.partition_values import routable_rows
from tenancy.testing.result import CheckOptions, TenantTable
from tenancy.testing.value import Column, synthetic_value

#: How many random tenants to draw before giving up on finding one without rows.
_DRAWS = 5

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
class Members:
    """Membership-based schemes: a new user who is a member of each probe tenant."""

    insert: TextClause
    delete: TextClause
    #: The membership rows' values, ``tenant`` and ``user`` among them.
    rows: tuple[dict[str, str], ...]

    @property
    def users(self) -> dict[str, str]:
        """Return the member user of each probe tenant."""
        return {row["tenant"]: row["user"] for row in self.rows}


@dataclass(frozen=True)
class Fixture:
    """One table's probe rows: the statements, the two tenants, how to make values."""

    table: TenantTable
    statements: Statements
    tenants: tuple[str, str]
    makers: dict[str, Maker]
    columns: tuple[Column, ...]
    members: Members | None = None
    #: Its rows route to partitions by value (a 23514 is said plainly then).
    partitioned: bool = False

    def values(self) -> dict[str, str]:
        """Return fresh values for one row (all but the tenant), as ``vN`` parameters."""
        # Fresh per row: two rows never collide under a unique index, not even under
        # a global one (a public token).
        return {
            f"v{i}": self.makers[c.name]() for i, c in enumerate(self.columns) if not c.is_tenant
        }


async def plan(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions, *, committed: bool
) -> Fixture:
    """Read what ``table``'s probe rows need, in the caller's transaction; write nothing.

    Raises:
        ValueError: a column no value can be made up for, no tenant column, no two
            tenants free of rows (committed), or a missing membership table.
    """
    partitioned = bool((await connection.execute(_IS_PARTITIONED, {"oid": table.oid})).scalar())
    routes = await _routes(connection, table) if partitioned else []
    keys = sorted({key for route in routes for key in route})
    columns = await _columns(connection, table.oid, table.tenant_column, keys)
    probe_sql = statements(connection, table, columns, table.tenant_column)
    # Partition keys other than the tenant take a value their partitions accept.
    routed = next((r for r in routes if table.tenant_column not in r), {})
    makers = await check_makers(connection, table, columns) if committed else {}
    for column in columns:
        if not column.is_tenant:
            makers.setdefault(column.name, _maker(table, column))
        if column.name in routed:
            makers[column.name] = _constant(routed[column.name])
    tenants = await _two_tenants(connection, table, columns, routes, probe_sql, committed)
    members = await _members(connection, options, tenants, committed=committed)
    return Fixture(table, probe_sql, tenants, makers, tuple(columns), members, partitioned)


async def write_rolled_back(connection: AsyncConnection, fixture: Fixture) -> None:
    """Write the rows in the caller's transaction, dropping the table's CHECK constraints there."""
    quote = connection.dialect.identifier_preparer.quote
    table = fixture.table
    await _relax(connection)
    for (name,) in (await connection.execute(_CHECK_CONSTRAINTS, {"oid": table.oid})).all():
        await connection.exec_driver_sql(
            f"ALTER TABLE {quote(table.schema)}.{quote(table.name)} DROP CONSTRAINT {quote(name)}"
        )
    await _insert(connection, fixture)


async def write_committed(connection: AsyncConnection, fixture: Fixture) -> None:
    """Write the rows in a transaction of their own, committed; ``remove`` deletes them."""
    async with connection.begin():
        await _relax(connection)
        await _insert(connection, fixture)


async def remove(connection: AsyncConnection, fixture: Fixture) -> None:
    """Delete, committed, every row of the fixture's two tenants (and its membership rows)."""
    async with connection.begin():
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        for tenant in fixture.tenants:
            await connection.execute(fixture.statements.delete_where, {"tenant": tenant})
        if fixture.members is not None:
            for row in fixture.members.rows:
                await connection.execute(fixture.members.delete, row)


async def _relax(connection: AsyncConnection) -> None:
    await connection.execute(text("SET LOCAL lock_timeout = '5s'"))
    await connection.execute(text("SET LOCAL session_replication_role = replica"))


async def _insert(connection: AsyncConnection, fixture: Fixture) -> None:
    for tenant in fixture.tenants:
        await connection.execute(fixture.statements.insert, {**fixture.values(), "tenant": tenant})
    if fixture.members is not None:
        for row in fixture.members.rows:
            await connection.execute(fixture.members.insert, row)


async def _columns(
    connection: AsyncConnection, oid: int, tenant_column: str, keys: list[str]
) -> list[Column]:
    found = await connection.execute(_COLUMNS, {"oid": oid, "column": tenant_column, "keys": keys})
    return [Column(*row) for row in found]


async def _routes(connection: AsyncConnection, table: TenantTable) -> list[dict[str, str]]:
    keys = list((await connection.execute(_PARTITION_KEYS, {"oid": table.oid})).scalars())
    bounds = list((await connection.execute(_PARTITION_BOUNDS, {"oid": table.oid})).scalars())
    return routable_rows(keys, bounds)


async def _two_tenants(
    connection: AsyncConnection,
    table: TenantTable,
    columns: list[Column],
    routes: list[dict[str, str]],
    probe_sql: Statements,
    committed: bool,
) -> tuple[str, str]:
    # Two distinct tenants of the tenant column's own type (uuid, integer, text, ...).
    tenant = next(c for c in columns if c.is_tenant)
    # Partitioned by tenant: tenants its partitions accept; else random ones.
    listed = list(dict.fromkeys(r[tenant.name] for r in routes if tenant.name in r))
    draws: list[Callable[[], str]] = (
        [_constant(value) for value in listed]
        if len(listed) >= 2
        else [_maker(table, tenant)] * (2 + (_DRAWS if committed else 0))
    )
    chosen: list[str] = []
    for draw in draws:
        value = draw()
        if value in chosen:
            continue
        # Committed rows are removed by tenant: a tenant with rows of its own is no use.
        if committed and (await connection.execute(probe_sql.taken, {"tenant": value})).scalar():
            continue
        chosen.append(value)
        if len(chosen) == 2:
            return chosen[0], chosen[1]
    if not committed:
        # Two random draws that came out equal: draw until they differ.
        second = synthetic_value(table, tenant)
        while second == chosen[0]:
            second = synthetic_value(table, tenant)
        return chosen[0], second
    raise ValueError(f"no two tenants without rows in {table.qualified} to write probe rows for")


async def _members(
    connection: AsyncConnection, options: CheckOptions, tenants: tuple[str, str], *, committed: bool
) -> Members | None:
    where = options.config.membership_table
    if where is None:
        return None
    schema, name, user_column, tenant_column = where
    oid = (await connection.execute(_TABLE_OID, {"schema": schema, "table": name})).scalar()
    if oid is None:
        raise ValueError(f"membership table {schema}.{name} does not exist")
    table = TenantTable(schema=schema, name=name, oid=oid, tenant_column=tenant_column)
    columns = await _columns(connection, oid, tenant_column, [user_column])
    member_sql = statements(connection, table, columns, tenant_column)
    makers = await check_makers(connection, table, columns) if committed else {}
    user_key = ""
    for i, column in enumerate(columns):
        if column.name == user_column:
            user_key = f"v{i}"
        if not column.is_tenant:
            makers.setdefault(column.name, _maker(table, column))
    rows = []
    for tenant in tenants:
        values = {f"v{i}": makers[c.name]() for i, c in enumerate(columns) if not c.is_tenant}
        rows.append({**values, "tenant": tenant, "user": values[user_key]})
    quote = connection.dialect.identifier_preparer.quote
    user_type = next(c.type_sql for c in columns if c.name == user_column)
    delete = text(
        f"{member_sql.delete_where.text} AND {quote(user_column)} = "
        f"CAST(CAST(:user AS text) AS {user_type})"
    )
    return Members(insert=member_sql.insert, delete=delete, rows=tuple(rows))


def _maker(table: TenantTable, column: Column) -> Maker:
    return lambda: synthetic_value(table, column)


def _constant(value: str) -> Maker:
    return lambda: value
