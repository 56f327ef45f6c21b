"""The ``tenancy`` command line: subcommands, exit codes, and errors without tracebacks.

``main`` runs ``asyncio.run`` for its subcommands, so tests call it in a worker
thread (``run_cli``); one test runs the installed console script end to end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from repositories.models import TENANT_TABLES
from tenancy.cli.command import (
    EXIT_GAPS,
    EXIT_NOT_RUN,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from tenancy.schema.resources import migrations_dir
from tests.cli.databases import execute_ddl, run_cli

UNREACHABLE = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"


def url_arg(url: URL) -> str:
    """Return ``url`` as the command line takes it."""
    return url.render_as_string(hide_password=False)


async def revision(url: URL) -> str | None:
    """Return the revision recorded in the database at ``url``."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT version_num FROM tenancy_alembic_version")
            )
            return found.scalar_one_or_none()
    finally:
        await engine.dispose()


def head() -> str | None:
    """Return the head revision of the shipped migrations."""
    return ScriptDirectory(str(migrations_dir())).get_current_head()


@pytest.fixture
def no_url_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure no ``TENANCY_*`` URL variable leaks in from the environment."""
    monkeypatch.delenv("TENANCY_ADMIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("TENANCY_DATABASE_URL", raising=False)


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == EXIT_OK
    out = capsys.readouterr().out
    assert all(name in out for name in ("migrate", "seed", "audit"))


@pytest.mark.usefixtures("no_url_in_env")
def test_a_missing_database_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit"])

    assert exited.value.code == EXIT_USAGE
    assert "--database-url" in capsys.readouterr().err


def test_seed_refuses_zero_organizations(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["seed", "--orgs", "0", "--database-url", UNREACHABLE])

    assert exited.value.code == EXIT_USAGE
    assert "must be at least 1" in capsys.readouterr().err


async def test_the_installed_command_migrates_an_empty_database_to_head(empty_url: URL) -> None:
    command = Path(sys.executable).parent / "tenancy"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}

    result = await asyncio.to_thread(
        subprocess.run,
        [str(command), "migrate", "--database-url", url_arg(empty_url)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == EXIT_OK, result.stderr
    assert "migrated" in result.stdout
    assert await revision(empty_url) == head()


async def test_migrating_a_migrated_database_again_changes_nothing(scratch_url: URL) -> None:
    assert await run_cli("migrate", "--database-url", url_arg(scratch_url)) == EXIT_OK

    assert await revision(scratch_url) == head()


async def test_the_admin_url_variable_is_the_default_database_url(
    monkeypatch: pytest.MonkeyPatch, empty_url: URL
) -> None:
    monkeypatch.setenv("TENANCY_ADMIN_DATABASE_URL", url_arg(empty_url))

    assert await run_cli("migrate") == EXIT_OK
    assert await revision(empty_url) == head()


async def test_audit_prints_every_table_and_passes_a_migrated_database(
    module_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_cli("audit", "--database-url", url_arg(module_url))

    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert all(f"  public.{table} " in out for table in ("organizations", "users", *TENANT_TABLES))
    assert "Audit passed" in out


async def test_audit_exits_with_gaps_after_force_is_removed_from_a_table(
    scratch_url: URL, scratch_superuser: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await execute_ddl(scratch_superuser, "ALTER TABLE payment_orders NO FORCE ROW LEVEL SECURITY")

    code = await run_cli("audit", "--database-url", url_arg(scratch_url))

    assert code == EXIT_GAPS
    assert (
        "public.payment_orders [rls-not-forced]: row-level security is not forced"
        in capsys.readouterr().out
    )


async def test_audit_exits_with_gaps_after_a_permissive_using_true_policy_is_added(
    scratch_url: URL, scratch_superuser: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await execute_ddl(
        scratch_superuser, "CREATE POLICY everyone ON customers AS PERMISSIVE USING (true)"
    )

    code = await run_cli("audit", "--database-url", url_arg(scratch_url))

    assert code == EXIT_GAPS
    assert (
        "public.customers [permissive-beyond-tenant]: permissive policy 'everyone'"
        in capsys.readouterr().out
    )


async def test_seed_reports_each_organization_it_created(
    scratch_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_cli("seed", "--orgs", "2", "--database-url", url_arg(scratch_url))

    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert out.count(": created") == 2


async def test_an_unreachable_database_is_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await run_cli("audit", "--database-url", UNREACHABLE)

    err = capsys.readouterr().err
    # The isolation checks exit 2 when they cannot run (issue 14), not 1.
    assert code == EXIT_NOT_RUN
    assert err.startswith("tenancy: error: database unreachable")
    assert err.count("\n") == 1


async def test_errors_never_show_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    await run_cli("migrate", "--database-url", UNREACHABLE)

    assert "s3cret-pw" not in capsys.readouterr().err


async def test_a_url_that_is_not_postgres_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = await run_cli("audit", "--database-url", "mysql://root@127.0.0.1/app")

    assert code == EXIT_NOT_RUN
    assert "needs PostgreSQL" in capsys.readouterr().err
