"""The ``tenancy.testing`` pytest plugin, run by pytester against this project's schema."""

from __future__ import annotations

from importlib.metadata import entry_points

import psycopg
import pytest
from sqlalchemy.engine import URL

from repositories.models import TENANT_TABLES
from tenancy.testing.catalog_checks import CATALOG_CHECKS, ROLE_CHECKS
from tenancy.testing.probe import ISOLATION_CHECKS
from tests.security.plugin.gapped_database import EXPECTED_GAPS, PLUGIN, plugin_args

pytestmark = pytest.mark.security


def cases(recorder: pytest.HookRecorder, outcome: int) -> set[str]:
    """Return ``subject::check`` of the plugin items that passed (0) or failed (2)."""
    reports = recorder.listoutcomes()[outcome]
    return {r.nodeid.removeprefix("tenancy-isolation::") for r in reports}


def isolation_run(service: pytest.Pytester, url: URL | str, *more: str) -> pytest.HookRecorder:
    """Run the plugin's checks in ``service`` against ``url``."""
    return service.inline_run(
        *plugin_args("--tenancy-isolation", "--tenancy-database-url", url, *more)
    )


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    assert PLUGIN in {ep.value for ep in entry_points(group="pytest11")}


def test_plugin_adds_nothing_unless_enabled(
    service: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unreachable database proves no connection is even attempted.
    monkeypatch.setenv("TENANCY_ISOLATION_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x")
    service.makepyfile("def test_unrelated(): pass")
    service.inline_run(*plugin_args()).assertoutcome(passed=1)


def test_plugin_enabled_without_a_database_is_a_usage_error(service: pytest.Pytester) -> None:
    result = service.runpytest_inprocess(*plugin_args("--tenancy-isolation"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_plugin_checks_every_tenant_table_and_the_app_role(
    service: pytest.Pytester, sound_url: URL
) -> None:
    expected = {f"tenancy_app::{check}" for check in ROLE_CHECKS} | {
        f"public.{table}::{check}"
        for table in TENANT_TABLES
        for check in (*CATALOG_CHECKS, *ISOLATION_CHECKS)
    }
    assert expected <= cases(isolation_run(service, sound_url), 0)


def test_plugin_passes_on_the_schema_as_migrated(service: pytest.Pytester, sound_url: URL) -> None:
    assert cases(isolation_run(service, sound_url), 2) == set()


def test_plugin_passes_with_committed_fixtures_when_told(
    service: pytest.Pytester, sound_url: URL
) -> None:
    recorder = isolation_run(service, sound_url, "--tenancy-fixtures", "committed")
    assert cases(recorder, 2) == set()
    assert {f"public.{t}::foreign_insert" for t in TENANT_TABLES} <= cases(recorder, 0)


def test_plugin_fails_exactly_the_checks_a_broken_schema_breaks(
    service: pytest.Pytester, broken_url: URL
) -> None:
    assert cases(isolation_run(service, broken_url), 2) == EXPECTED_GAPS


def test_plugin_flags_a_role_that_bypasses_row_security(
    service: pytest.Pytester, broken_url: URL, bypassing_role: str
) -> None:
    failed = cases(isolation_run(service, broken_url, "--tenancy-app-role", bypassing_role), 2)
    assert f"{bypassing_role}::no_bypassrls" in failed
    assert {f"public.{table}::cross_tenant_select" for table in TENANT_TABLES} <= failed


def test_global_unique_option_exempts_a_declared_token(
    service: pytest.Pytester, broken_url: URL
) -> None:
    recorder = isolation_run(
        service, broken_url, "--tenancy-global-unique", "uq_customers_email_global"
    )
    assert "public.customers::unique_includes_tenant" in cases(recorder, 0)


def test_global_unique_ini_option_exempts_a_declared_token(
    service: pytest.Pytester, broken_url: URL
) -> None:
    service.makeini("[pytest]\ntenancy_global_unique =\n    uq_customers_email_global\n")
    recorder = isolation_run(service, broken_url, "-k", "customers and unique")
    assert cases(recorder, 0) == {"public.customers::unique_includes_tenant"}


def test_plugin_reads_the_database_from_the_environment(
    service: pytest.Pytester, sound_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "TENANCY_ISOLATION_DATABASE_URL", sound_url.render_as_string(hide_password=False)
    )
    recorder = service.inline_run(*plugin_args("--tenancy-isolation", "-k", "rls_forced"))
    assert len(cases(recorder, 0)) == len(TENANT_TABLES)


def test_plugin_prints_cases_and_failures_per_category(
    service: pytest.Pytester, broken_url: URL
) -> None:
    result = service.runpytest_inprocess(
        *plugin_args("--tenancy-isolation", "--tenancy-database-url", broken_url)
    )
    tables = len(TENANT_TABLES)
    result.stdout.fnmatch_lines(
        [
            "*tenancy isolation checks*",
            "role          4 cases, 0 failed",
            f"catalog    {4 * tables:>4} cases, 4 failed",
            f"isolation  {6 * tables:>4} cases, 8 failed",
        ]
    )


def test_unreachable_database_is_a_collection_error(service: pytest.Pytester) -> None:
    recorder = isolation_run(service, "postgresql://postgres@127.0.0.1:1/x")
    assert len(recorder.getfailedcollections()) == 1


def test_plugin_leaves_no_rows_and_no_dropped_constraint_behind(
    service: pytest.Pytester, sound_url: URL
) -> None:
    def snapshot() -> tuple[object, ...]:
        with psycopg.connect(
            host=sound_url.host,
            port=sound_url.port,
            user=sound_url.username,
            dbname=sound_url.database,
        ) as connection:
            rows = tuple(
                connection.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
                for table in TENANT_TABLES
            )
            constraints = connection.execute(
                b"SELECT count(*) FROM pg_constraint WHERE contype = 'c'"
            ).fetchone()
        return (*rows, constraints)

    before = snapshot()
    isolation_run(service, sound_url)
    assert snapshot() == before
