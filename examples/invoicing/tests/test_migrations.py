"""The service's migrations layer on the library's: one head, both schemas, both policies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tenancy.schema.migration import history
from tests.conftest import create_database, database_url, drop_database, run

#: The newest revision the installed library ships.
LIBRARY_HEAD = history()[-1][0]


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """An empty database owned by the owner role (which the first migration created)."""
    name = f"invoicing_empty_{secrets.token_hex(4)}"
    await create_database(name, owner="tenancy_owner")
    yield name
    await drop_database(name)


async def tables(url: str) -> set[str]:
    """Return the table names of schema public."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


async def test_alembic_upgrade_head_with_the_owner_url_installs_both_schemas(
    empty_database: str,
) -> None:
    owner_url = database_url(empty_database, user="tenancy_owner")

    run("alembic", "upgrade", "head", url=owner_url)

    assert {"organizations", "customers", "invoices", "invoice_lines"} <= await tables(
        database_url(empty_database)
    )


async def test_the_audit_passes_and_lists_the_services_tables(empty_database: str) -> None:
    run("alembic", "upgrade", "head", url=database_url(empty_database, user="tenancy_owner"))

    audit = run("tenancy", "audit", "--database-url", database_url(empty_database), url="")

    assert "invoices" in audit.stdout
    assert "invoice_lines" in audit.stdout


async def test_each_history_is_recorded_in_its_own_version_table(superuser_url: str) -> None:
    assert await _versions(superuser_url) == {
        "tenancy_alembic_version": [LIBRARY_HEAD],
        "alembic_version": ["invoicing_0001"],
    }


def test_the_service_has_one_head_of_its_own(superuser_url: str) -> None:
    heads = run("alembic", "heads", url=superuser_url).stdout.split()

    assert heads[0] == "invoicing_0001"
    assert LIBRARY_HEAD not in heads


def test_alembic_check_finds_the_database_in_step_with_both_models_and_policies(
    superuser_url: str,
) -> None:
    result = run("alembic", "check", url=superuser_url, check=False)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_tenancy_migrate_from_the_service_folder_runs_both_histories(superuser_url: str) -> None:
    migrated = run("tenancy", "migrate", "--database-url", superuser_url, url="")
    current = run("tenancy", "current", "--database-url", superuser_url, url="")

    assert "migrated" in migrated.stdout
    assert current.stdout.split() == [LIBRARY_HEAD, "invoicing_0001"]


async def test_downgrade_moves_only_the_services_history(empty_database: str) -> None:
    url = database_url(empty_database)
    run("alembic", "upgrade", "head", url=url)

    run("alembic", "downgrade", "base", url=url)

    found = await tables(url)
    assert "invoices" not in found
    assert "customers" in found
    assert (await _versions(url))["tenancy_alembic_version"] == [LIBRARY_HEAD]


async def _versions(url: str) -> dict[str, list[str]]:
    connection = await asyncpg.connect(url)
    try:
        return {
            table: [row[0] for row in await connection.fetch(f"SELECT version_num FROM {table}")]
            for table in ("tenancy_alembic_version", "alembic_version")
        }
    finally:
        await connection.close()
