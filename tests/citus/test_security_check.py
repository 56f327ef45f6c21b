"""`tenancy security-check` and the pytest plugin on a coordinator with the library migrated:
every tenant table attacked as the app role, nothing found, no probe row left behind.

On Citus the probe commits its rows and deletes them afterwards (one transaction may
not touch a shard as two users); the tests count what is left, as the superuser.
"""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy.engine import URL

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.schema.migration import upgrade
from tenancy.testing import CheckOptions, CheckResult, check_database, discover, run_sync
from tenancy.testing.probe import ISOLATION_CHECKS
from tenancy.testing.result import ISOLATION
from tenancy.testing.security_check import EXIT_OK
from tests.citus.cluster import CitusCluster
from tests.citus.security_support import rows_left, run_plugin, security_check

DBNAME = "tenancy_security"


@pytest.fixture(scope="module")
def library(cluster: CitusCluster) -> URL:
    """The library migrated on a coordinator database of its own; its superuser URL."""
    url = cluster.create_database(DBNAME)
    upgrade(url, report=lambda line: None)
    return url


@pytest.fixture(scope="module")
def isolation(library: URL) -> dict[str, CheckResult]:
    """The isolation results of one run of the checks, by ``subject::check``."""
    results = run_sync(check_database(library, CheckOptions()))
    return {r.case_id: r for r in results if r.category == ISOLATION}


@pytest.fixture(scope="module")
def plugin_run(
    library: URL, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The pytest plugin run against the coordinator from an empty service project."""
    return run_plugin(tmp_path_factory.mktemp("service"), library, "-q")


def test_security_check_exits_0_on_the_coordinator(
    capsys: pytest.CaptureFixture[str], library: URL
) -> None:
    code, output = security_check(capsys, library)

    assert code == EXIT_OK, output
    assert output.splitlines()[0].endswith(" cases, 0 failed")


def test_every_tenant_table_gets_every_isolation_check_and_passes(
    library: URL, isolation: dict[str, CheckResult]
) -> None:
    tables = run_sync(discover(library, CheckOptions()))

    assert len(tables) >= 10
    assert set(isolation) == {f"{t.qualified}::{c}" for t in tables for c in ISOLATION_CHECKS}
    assert [r for r in isolation.values() if not r.passed] == []


def test_moving_a_row_of_a_distributed_table_is_refused_by_citus(
    isolation: dict[str, CheckResult],
) -> None:
    move = isolation["public.customers::move_to_other_tenant"]

    assert move.passed
    assert move.detail == "refused by Citus: a distribution column cannot change (SQLSTATE 0A000)"


def test_a_run_leaves_no_probe_row(
    cluster: CitusCluster, library: URL, isolation: dict[str, CheckResult]
) -> None:
    assert rows_left(cluster, library) == {}


def test_a_binding_that_fails_after_the_rows_are_committed_leaves_none(
    cluster: CitusCluster, library: URL
) -> None:
    # The rows are written, then binding tenant A fails (no such table) mid-attack.
    broken = IsolationConfig(
        tenant_binding="SELECT set_config('app.org_id', {tenant}, true) FROM nowhere"
    )
    results = run_sync(check_database(library, CheckOptions(config=broken)))
    probed = [r for r in results if r.category == ISOLATION]

    assert probed
    assert all(r.detail.startswith("probe could not run:") for r in probed)
    assert rows_left(cluster, library) == {}


def test_the_pytest_plugin_passes_on_the_coordinator(
    library: URL, plugin_run: subprocess.CompletedProcess[str]
) -> None:
    tables = run_sync(discover(library, CheckOptions()))

    assert plugin_run.returncode == 0, plugin_run.stdout[-3000:]
    assert f"isolation  {6 * len(tables):>4} cases, 0 failed" in plugin_run.stdout


def test_the_plugin_run_leaves_no_probe_row(
    cluster: CitusCluster, library: URL, plugin_run: subprocess.CompletedProcess[str]
) -> None:
    assert rows_left(cluster, library) == {}
