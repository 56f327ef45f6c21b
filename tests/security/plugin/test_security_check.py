"""``tenancy.testing.security_check``: the plugin's checks as one command with a summary."""

from __future__ import annotations

import io
from collections.abc import Sequence

import psycopg
import pytest
from sqlalchemy.engine import URL

from repositories.models import TENANT_TABLES
from tenancy import TenancySettings
from tenancy.cli.command import main
from tenancy.testing import CheckOptions, discover, run_sync
from tenancy.testing.result import FixtureMode
from tenancy.testing.security_check import EXIT_FAILURES, EXIT_NOT_RUN, EXIT_OK, run
from tests.security.plugin.gapped_database import EXPECTED_GAPS

pytestmark = pytest.mark.security


def check(
    url: URL | str, global_unique: Sequence[str] = (), fixtures: FixtureMode = "auto"
) -> tuple[int, str]:
    """Run the security check against ``url``; return its exit code and output."""
    out = io.StringIO()
    target = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    return run(target, global_unique=global_unique, fixtures=fixtures, out=out), out.getvalue()


def rows_left(url: URL) -> dict[str, int]:
    """Return the tenant tables of ``url``'s database that hold rows, with their counts."""
    tables = run_sync(discover(url, CheckOptions()))
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    ) as connection:
        counts = {
            t.qualified: connection.execute(
                f'SELECT count(*) FROM "{t.schema}"."{t.name}"'.encode()
            ).fetchone()
            for t in tables
        }
    return {table: row[0] for table, row in counts.items() if row and row[0]}


def test_sound_database_passes_with_a_summary_per_category(sound_url: URL) -> None:
    code, output = check(sound_url)
    tables = len(TENANT_TABLES)
    # Policy content: three checks per tenant table and the organizations root, and
    # five database-wide ones.
    policy = 3 * (tables + 1) + 5
    assert code == EXIT_OK
    assert output.splitlines()[:6] == [
        f"tenancy security-check: {4 + 10 * tables + policy} cases, 0 failed",
        "category    cases  failed",
        "role            4       0",
        f"catalog    {4 * tables:>6}       0",
        f"policy     {policy:>6}       0",
        f"isolation  {6 * tables:>6}       0",
    ]


def test_committed_fixtures_pass_the_sound_database_too(sound_url: URL) -> None:
    code, output = check(sound_url, fixtures="committed")
    assert code == EXIT_OK, output


def test_committed_fixtures_leave_no_row_behind(
    sound_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    target = sound_url.render_as_string(hide_password=False)
    code = main(["security-check", "--database-url", target, "--fixtures", "committed"])
    assert code == EXIT_OK, capsys.readouterr().out
    assert rows_left(sound_url) == {}


def test_broken_database_fails_and_lists_each_gap(broken_url: URL) -> None:
    code, output = check(broken_url)
    assert code == EXIT_FAILURES
    failures = [line for line in output.splitlines() if line.startswith("FAILED")]
    # FAILED [category] subject::check: detail
    assert {line.split("] ", 1)[1].split(": ", 1)[0] for line in failures} == EXPECTED_GAPS


def test_declared_global_token_is_not_a_gap(broken_url: URL) -> None:
    _, output = check(broken_url, global_unique=["uq_customers_email_global"])
    assert "customers::unique_includes_tenant" not in output


def test_app_role_url_is_refused_without_running(settings: TenancySettings) -> None:
    code, output = check(settings.app_url())
    assert code == EXIT_NOT_RUN
    assert "superuser" in output


def test_unreachable_database_is_reported_without_running() -> None:
    code, output = check("postgresql://postgres@127.0.0.1:1/x")
    assert code == EXIT_NOT_RUN
    assert output.startswith("security-check could not run")
