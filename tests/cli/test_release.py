"""Release hygiene of the command line (issue 12, item 9)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import URL

import tenancy
from repositories import PlatformDatabase
from tenancy import DatabaseUnavailable, TenancySettings
from tenancy.cli.command import EXIT_NOT_RUN, EXIT_OK, EXIT_USAGE, main
from tenancy.schema.migration import current, history
from tests.cli.databases import run_cli


def _url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def test_the_package_has_a_version() -> None:
    assert tenancy.__version__
    assert tenancy.__version__ != "0+unknown"


def test_version_option_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == EXIT_OK
    assert capsys.readouterr().out.strip() == f"tenancy {tenancy.__version__}"


def test_a_missing_database_url_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TENANCY_ADMIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("TENANCY_DATABASE_URL", raising=False)

    with pytest.raises(SystemExit) as exited:
        main(["relay", "status"])

    assert exited.value.code == EXIT_USAGE
    assert capsys.readouterr().err == (
        "tenancy: error: no database URL: pass --database-url or set TENANCY_ADMIN_DATABASE_URL\n"
    )


async def test_connecting_to_a_missing_database_raises_database_unavailable(
    admin_url: URL,
) -> None:
    missing = admin_url.set(database="tenancy_no_such_db")
    settings = TenancySettings(database_url=_url(missing))

    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        await PlatformDatabase.connect(settings)


async def test_audit_of_a_missing_database_says_it_does_not_exist(
    admin_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = admin_url.set(database="tenancy_no_such_db")

    # The isolation checks exit 2 when they cannot run (issue 14).
    assert await run_cli("audit", "--database-url", _url(missing)) == EXIT_NOT_RUN

    assert "the database does not exist" in capsys.readouterr().err


def test_history_lists_the_shipped_revisions_oldest_first() -> None:
    revisions = [revision for revision, _ in history()]

    assert revisions[0] == "tenancy_0001"
    assert revisions == sorted(revisions)


async def test_current_prints_the_head_of_a_migrated_database(
    scratch_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("current", "--database-url", _url(scratch_url)) == EXIT_OK

    assert capsys.readouterr().out.strip() == history()[-1][0]


async def test_current_of_an_empty_database_is_base(empty_url: URL) -> None:
    assert await asyncio.to_thread(current, empty_url) == ()


async def test_downgrade_prints_the_revisions_it_reverts(
    scratch_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = history()[-2][0]

    assert await run_cli("downgrade", "--database-url", _url(scratch_url), previous) == EXIT_OK

    out = capsys.readouterr().out
    assert f"reverted {history()[-1][0]}" in out
    assert await asyncio.to_thread(current, scratch_url) == (previous,)
