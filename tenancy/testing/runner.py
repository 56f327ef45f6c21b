"""Run the isolation checks against a database given by an owner-of-everything URL.

The URL must be a superuser's: the behavioural probes write rows as it, with
triggers off, and switch to the app role inside transactions they roll back (on
a Citus coordinator the rows are committed and deleted afterwards; see
``tenancy.testing.probe``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.db.engine import create_engine
from tenancy.errors import ConfigurationError, raise_translated
from tenancy.schema.citus import distribution_columns, has_citus
from tenancy.settings import TenancySettings, async_url
from tenancy.testing.catalog_checks import role_checks, table_checks, tenant_tables
from tenancy.testing.policy_checks import policy_checks
from tenancy.testing.probe import Mode, isolation_checks
from tenancy.testing.result import CheckOptions, CheckResult, TenantTable

ResultT = TypeVar("ResultT")

APPLICATION_NAME = "tenancy-isolation-check"


async def discover(url: str | URL, options: CheckOptions) -> list[TenantTable]:
    """Return the tenant tables of the database at ``url``.

    Raises:
        ConfigurationError: ``url`` is not a superuser's.
        DatabaseUnavailable: the database cannot be reached.
    """
    async with _superuser_connection(url) as connection:
        return await tenant_tables(connection, options)


async def check_database(url: str | URL, options: CheckOptions) -> list[CheckResult]:
    """Run every check (role, catalog, policy, isolation) and return all results.

    Raises:
        ConfigurationError: ``url`` is not a superuser's, or the database is busy
            (other sessions are working in it) and ``options.allow_busy`` is false.
        DatabaseUnavailable: the database cannot be reached.
        DatabaseError: committed probe rows (Citus) could not be deleted.
    """
    async with _superuser_connection(url) as connection:
        if not options.allow_busy:
            await _refuse_if_busy(connection)
        tables = await tenant_tables(connection, options)
        results = await role_checks(connection, options)
        for table in tables:
            results += await table_checks(connection, table, options)
        if tables:
            results += await policy_checks(connection, options)
        mode = await probe_mode(connection, options)
        await connection.rollback()
        for table in tables:
            results += await isolation_checks(connection, table, options, mode)
        return results


async def probe_mode(connection: AsyncConnection, options: CheckOptions) -> Mode:
    """Return how the probe holds its rows here: committed on a Citus coordinator (``auto``)."""
    citus = await connection.run_sync(has_citus)
    committed = options.fixtures == "committed" or (options.fixtures == "auto" and citus)
    distribution = await connection.run_sync(distribution_columns) if citus else {}
    return Mode(committed=committed, citus=citus, distribution=distribution)


# Sessions in this database that are running a statement or holding a transaction
# open: the probe's dropped CHECK constraints would take ACCESS EXCLUSIVE locks
# that they wait for, or that block them.
_BUSY = text(
    """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'
      AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
    """
)


async def _refuse_if_busy(connection: AsyncConnection) -> None:
    busy = (await connection.execute(_BUSY)).scalar()
    await connection.rollback()
    if busy:
        raise ConfigurationError(
            f"{busy} other session(s) are working in this database; the probes would take "
            "locks on its tables. Run against a CI or staging copy, or allow it "
            "(--allow-busy, --tenancy-allow-busy)"
        )


def run_sync(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    """Run ``coroutine`` to completion on a private event loop and return its result."""
    # A private loop, never installed as the thread's current one: pytest-asyncio or
    # the caller may own that, and asyncio.run() would reset it to None afterwards.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        return runner.run(coroutine)


@asynccontextmanager
async def _superuser_connection(url: str | URL) -> AsyncIterator[AsyncConnection]:
    target = async_url(url)
    settings = TenancySettings(
        database_url=target.render_as_string(hide_password=False),
        pool_size=1,
        max_overflow=0,
        application_name=APPLICATION_NAME,
    )
    engine = create_engine(settings, url=target)
    try:
        try:
            connection = await engine.connect()
        except Exception as exc:
            raise_translated(exc)
            raise
        try:
            is_superuser = (
                await connection.execute(
                    text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                )
            ).scalar()
            await connection.rollback()
            if not is_superuser:
                raise ConfigurationError(
                    "the isolation checks need a superuser URL (they switch roles and "
                    "triggers inside transactions that are rolled back)"
                )
            yield connection
        finally:
            await connection.close()
    finally:
        await engine.dispose()
