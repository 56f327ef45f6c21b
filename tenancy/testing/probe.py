"""Behavioural checks: acting as the application role, can one tenant reach another's row?

For each tenant table, two synthetic rows are written as the connecting
superuser, one for tenant A and one for tenant B (``tenancy.testing.fixture``).
Then, as the application role: count the rows with no tenant bound (fail closed:
none visible, or the policy errors), bind tenant A (the configured setting, or
the configured SQL template) and attack B's row (``tenancy.testing.attack``).

Two modes (``Mode``):

* rolled back, the default on plain PostgreSQL: everything in one transaction
  that is always rolled back, each attack in a savepoint. The table's CHECK
  constraints are dropped there, so only row-level security and privileges are
  left to refuse the attacks. Nothing is ever committed. The dropped constraints
  hold an ACCESS EXCLUSIVE lock on the table until the rollback (``lock_timeout``
  bounds the wait).
* committed, chosen on a Citus coordinator: Citus refuses, inside one
  transaction, to touch a shard placement that another *user* modified in it, so
  the superuser's rows cannot be attacked by the app role in the same
  transaction. The rows are committed in a transaction of their own, for two
  tenants that have no rows, each attack runs in its own rolled-back
  transaction, and the rows are deleted (committed) in a ``finally``, whatever
  the checks found or raised. While they exist they are visible to roles that
  bypass RLS (a relay reading the outbox, say).

Either way, run this against a CI or staging database, not a busy production one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.errors import DatabaseError
from tenancy.testing.attack import (
    ISOLATION_CHECKS,
    REFUSED,
    SavepointAttacker,
    TransactionAttacker,
    attacks,
    cause,
    fail_closed,
    sqlstate,
)
from tenancy.testing.binding import Binding
from tenancy.testing.fixture import Fixture, plan, remove, write_committed, write_rolled_back
from tenancy.testing.result import ISOLATION, CheckOptions, CheckResult, TenantTable, failed

__all__ = ["ISOLATION_CHECKS", "REFUSED", "Mode", "isolation_checks", "sqlstate"]


@dataclass(frozen=True)
class Mode:
    """How the probe holds its rows, and what it knows of a Citus layout."""

    #: Rows committed and deleted afterwards, attacks in transactions of their own.
    committed: bool = False
    #: The database is a Citus coordinator.
    citus: bool = False
    #: Citus: the distribution column of each hash-distributed table, by oid.
    distribution: Mapping[int, str] = field(default_factory=dict)


async def isolation_checks(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions, mode: Mode | None = None
) -> list[CheckResult]:
    """Probe ``table`` as the application role; return one result per isolation check.

    Raises:
        DatabaseError: committed mode only: the probe's rows could not be deleted.
    """
    mode = mode or Mode()
    if mode.committed:
        return await _committed(connection, table, options, mode)
    return await _rolled_back(connection, table, options, mode)


async def _rolled_back(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions, mode: Mode
) -> list[CheckResult]:
    transaction = await connection.begin()
    fixture: Fixture | None = None
    try:
        fixture = await plan(connection, table, options, committed=False)
        await write_rolled_back(connection, fixture)
        binding = _binding(options, fixture, mode)
        await binding.assume_role(connection)
        attacker = SavepointAttacker(connection)
        closed = await fail_closed(attacker, table, fixture.statements, fixture.tenants[0])
        await binding.bind(connection, fixture.tenants[0])
        found = await attacks(
            attacker,
            table,
            fixture.statements,
            fixture.values(),
            fixture.tenants,
            distributed_by_tenant=_distributed_by_tenant(table, mode),
        )
        return [closed, *found]
    except (DBAPIError, ValueError) as exc:
        return _not_run(table, exc, fixture)
    finally:
        await transaction.rollback()


async def _committed(
    connection: AsyncConnection, table: TenantTable, options: CheckOptions, mode: Mode
) -> list[CheckResult]:
    try:
        async with connection.begin() as reading:
            fixture = await plan(connection, table, options, committed=True)
            await reading.rollback()
    except (DBAPIError, ValueError) as exc:
        return _not_run(table, exc)
    try:
        await write_committed(connection, fixture)
        binding = _binding(options, fixture, mode)
        unbound = TransactionAttacker(connection, binding, None)
        closed = await fail_closed(unbound, table, fixture.statements, fixture.tenants[0])
        attacker = TransactionAttacker(connection, binding, fixture.tenants[0])
        found = await attacks(
            attacker,
            table,
            fixture.statements,
            fixture.values(),
            fixture.tenants,
            distributed_by_tenant=_distributed_by_tenant(table, mode),
        )
        return [closed, *found]
    except (DBAPIError, ValueError) as exc:
        return _not_run(table, exc, fixture)
    finally:
        await _remove(connection, fixture)


async def _remove(connection: AsyncConnection, fixture: Fixture) -> None:
    try:
        await remove(connection, fixture)
    except DBAPIError as exc:
        # Loud: committed rows left behind are not a finding about isolation.
        tenants = " and ".join(fixture.tenants)
        raise DatabaseError(
            f"the probe's rows in {fixture.table.qualified} could not be deleted "
            f"({cause(sqlstate(exc))}): delete the rows of tenants {tenants}",
            sqlstate=sqlstate(exc),
        ) from exc


def _distributed_by_tenant(table: TenantTable, mode: Mode) -> bool:
    return mode.distribution.get(table.oid) == table.tenant_column


def _binding(options: CheckOptions, fixture: Fixture, mode: Mode) -> Binding:
    members = fixture.members.users if fixture.members else None
    return Binding(options, members, set_local=mode.citus)


def _not_run(
    table: TenantTable, exc: Exception, fixture: Fixture | None = None
) -> list[CheckResult]:
    # The probe could not be set up: every check of the table fails, with the reason.
    reason = f"probe could not run: {_describe(exc, fixture)}"
    return [failed(ISOLATION, table.qualified, check, reason) for check in ISOLATION_CHECKS]


def _describe(exc: Exception, fixture: Fixture | None) -> str:
    if not isinstance(exc, DBAPIError):
        return str(exc)
    state = sqlstate(exc)
    if state == "23514" and fixture is not None and fixture.partitioned:
        # Said plainly for a partitioned table: its synthetic rows route by value.
        return f"no partition accepts a synthetic row (SQLSTATE {state})"
    return cause(state)
