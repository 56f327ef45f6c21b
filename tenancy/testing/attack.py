"""The attacks of the isolation probe, acting as the application role, and their verdicts.

Each attack is one statement. How it runs is the attacker's business: in a
savepoint of the probe's one transaction (``SavepointAttacker``), or in a
transaction of its own that is rolled back (``TransactionAttacker``, the Citus
way). The verdicts are the same either way, decided by SQLSTATE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from tenancy.testing.binding import Binding
from tenancy.testing.result import ISOLATION, CheckResult, TenantTable, failed, passed
from tenancy.testing.value import Column

#: SQLSTATE insufficient_privilege: refused by a policy or by missing grants.
REFUSED = "42501"
#: SQLSTATE feature_not_supported: what Citus answers to any change of a table's
#: distribution column, before a policy is consulted. A refusal only there.
DISTRIBUTION_COLUMN_FIXED = "0A000"
#: What a SQLSTATE met while setting up or probing means here, in words.
_CAUSES = {
    "0A000": "not supported by the database",
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

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Statements:
    """The SQL of one table's probes; identifiers quoted by the dialect, values bound."""

    insert: TextClause
    count: TextClause
    update_where: TextClause
    delete_where: TextClause
    move: TextClause
    #: Whether the table holds any row of a tenant (the committed probe's tenants must not).
    taken: TextClause


class Attacker(Protocol):
    """Runs one attack statement as the application role; returns what it did, or its SQLSTATE."""

    async def rows(self, statement: TextClause, params: Params) -> tuple[list[Any], str | None]:
        """Return the rows ``statement`` read, or the SQLSTATE it failed with."""
        ...

    async def affected(
        self, statement: TextClause, params: Params
    ) -> tuple[int | None, str | None]:
        """Return the number of rows ``statement`` changed, or the SQLSTATE it failed with."""
        ...


class SavepointAttacker:
    """Attacks in the caller's open transaction (role and tenant set), each in a savepoint."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows(self, statement: TextClause, params: Params) -> tuple[list[Any], str | None]:
        """Return the rows ``statement`` read, or the SQLSTATE it failed with."""
        try:
            async with self.connection.begin_nested():
                return list((await self.connection.execute(statement, params)).all()), None
        except DBAPIError as exc:
            return [], sqlstate(exc)

    async def affected(
        self, statement: TextClause, params: Params
    ) -> tuple[int | None, str | None]:
        """Return the number of rows ``statement`` changed, or the SQLSTATE it failed with."""
        try:
            async with self.connection.begin_nested():
                return (await self.connection.execute(statement, params)).rowcount, None
        except DBAPIError as exc:
            return None, sqlstate(exc)


class TransactionAttacker:
    """Attacks each in a transaction of its own, as the app role with ``tenant`` bound (or none).

    Every transaction is rolled back. On a Citus coordinator one transaction may
    not touch a shard placement as two users, so nothing else happens in it.
    """

    def __init__(self, connection: AsyncConnection, binding: Binding, tenant: str | None) -> None:
        self.connection = connection
        self.binding = binding
        self.tenant = tenant

    async def rows(self, statement: TextClause, params: Params) -> tuple[list[Any], str | None]:
        """Return the rows ``statement`` read, or the SQLSTATE it failed with."""
        transaction = await self._open()
        try:
            return list((await self.connection.execute(statement, params)).all()), None
        except DBAPIError as exc:
            return [], sqlstate(exc)
        finally:
            await transaction.rollback()

    async def affected(
        self, statement: TextClause, params: Params
    ) -> tuple[int | None, str | None]:
        """Return the number of rows ``statement`` changed, or the SQLSTATE it failed with."""
        transaction = await self._open()
        try:
            return (await self.connection.execute(statement, params)).rowcount, None
        except DBAPIError as exc:
            return None, sqlstate(exc)
        finally:
            await transaction.rollback()

    async def _open(self) -> AsyncTransaction:
        transaction = await self.connection.begin()
        try:
            # A role or binding that fails is the probe's failure, not the attack's.
            await self.binding.assume_role(self.connection)
            if self.tenant is not None:
                await self.binding.bind(self.connection, self.tenant)
        except BaseException:
            await transaction.rollback()
            raise
        return transaction


async def fail_closed(
    attacker: Attacker, table: TenantTable, statements: Statements, tenant: str
) -> CheckResult:
    """With no tenant bound, expect nothing visible (or the read refused)."""
    # A policy that errors (a cast of the empty setting, say) refuses the read: closed too.
    rows, state = await attacker.rows(statements.count, {"tenant": tenant})
    if state is None and rows[0][0]:
        return failed(
            ISOLATION,
            table.qualified,
            "fail_closed",
            f"with no tenant, {rows[0][0]} row(s) are visible",
        )
    note = "" if state is None else f"refused with no tenant: {cause(state)}"
    return passed(ISOLATION, table.qualified, "fail_closed", note)


async def attacks(
    attacker: Attacker,
    table: TenantTable,
    statements: Statements,
    values: dict[str, str],
    tenants: tuple[str, str],
    *,
    distributed_by_tenant: bool = False,
) -> list[CheckResult]:
    """Attack tenant B's row with tenant A bound; return one result per check after fail_closed.

    ``distributed_by_tenant``: the tenant column is the table's Citus distribution
    column, so Citus's refusal to change it (SQLSTATE 0A000) keeps a row in its tenant.
    """
    tenant_a, tenant_b = tenants
    subject = table.qualified

    def verdict(check: str, problem: str | None, note: str = "") -> CheckResult:
        if problem is None:
            return passed(ISOLATION, subject, check, note)
        return failed(ISOLATION, subject, check, problem)

    results: list[CheckResult] = []
    rows, state = await attacker.rows(statements.count, {"tenant": tenant_a})
    if state == REFUSED:
        results.append(verdict("cross_tenant_select", None, "SELECT not granted"))
    elif state is not None:
        results.append(verdict("cross_tenant_select", f"count failed: {cause(state)}"))
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
        count, state = await attacker.affected(statement, {"tenant": tenant_b})
        results.append(verdict(check, _untouched(count, state, "of another tenant were changed")))

    _, state = await attacker.affected(statements.insert, {**values, "tenant": tenant_b})
    results.append(
        verdict(
            "foreign_insert",
            None
            if state == REFUSED
            else "a row for another tenant was "
            + ("written" if state is None else f"not refused by RLS but met {cause(state)}"),
        )
    )
    count, state = await attacker.affected(statements.move, {"tenant": tenant_b, "own": tenant_a})
    if distributed_by_tenant and state == DISTRIBUTION_COLUMN_FIXED:
        note = "refused by Citus: a distribution column cannot change (SQLSTATE 0A000)"
        results.append(verdict("move_to_other_tenant", None, note))
    else:
        moved = _untouched(count, state, "were moved to another tenant")
        results.append(verdict("move_to_other_tenant", moved))
    return results


def _untouched(count: int | None, state: str | None, what: str) -> str | None:
    # Refused (by a policy or for want of a grant) or no row reached: both isolate.
    if state == REFUSED or (state is None and count == 0):
        return None
    if state is None:
        return f"{count} row(s) {what}"
    return f"unexpected error: {cause(state)}"


def sqlstate(exc: DBAPIError) -> str | None:
    """Return the SQLSTATE the server reported for ``exc``, if any."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return str(code) if code is not None else None


def cause(state: str | None) -> str:
    """Return what ``state`` means here, in words, with the SQLSTATE."""
    return f"{_CAUSES.get(state or '', 'database error')} (SQLSTATE {state})"


def statements(
    connection: AsyncConnection, table: TenantTable, columns: list[Column], tenant_column: str
) -> Statements:
    """Return the probe SQL of ``table`` for ``columns``; ``:tenant`` and ``:vN`` are bound.

    Raises:
        ValueError: ``columns`` hold no ``tenant_column``.
    """
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
    return Statements(
        insert=text(f"INSERT INTO {target} ({names}) VALUES ({casts})"),
        count=text(f"SELECT count(*), count(*) FILTER (WHERE {key} = {own}) FROM {target}"),
        update_where=text(f"UPDATE {target} SET {key} = {key} WHERE {key} = {own}"),
        delete_where=text(f"DELETE FROM {target} WHERE {key} = {own}"),
        move=text(
            f"UPDATE {target} SET {key} = {own} "
            f"WHERE {key} = CAST(CAST(:own AS text) AS {tenant.type_sql})"
        ),
        taken=text(f"SELECT EXISTS (SELECT 1 FROM {target} WHERE {key} = {own})"),
    )
