"""A base install works without the extras, and what needs one says which.

The checks run in a subprocess whose imports of the extras' packages fail, as
they would after ``pip install tenancy`` alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tenancy import TenancySettings

SCRIPT = Path(__file__).with_name("without_extras.py")
ROOT = Path(__file__).parents[2]


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )


def test_base_install_runs_units_of_work_and_the_repositories(settings: TenancySettings) -> None:
    result = _run("quickstart", env={"TENANCY_DATABASE_URL": settings.database_url})

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok c@base.example")


@pytest.mark.parametrize(
    "module",
    [
        "tenancy",
        "tenancy.db.database",
        "tenancy.cli.command",
        "repositories",
        "repositories.wallets.repository",
    ],
)
def test_base_install_imports_the_core_modules(module: str) -> None:
    result = _run("import", module)

    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("repositories.wallets.signer", "chain"),
        ("repositories.wallets.custody", "chain"),
        ("repositories.wallets.service", "chain"),
        ("repositories.wallets.web3_gateway", "chain"),
        ("tenancy.web.fastapi", "web"),
        ("tenancy.web.middleware", "web"),
        ("tenancy.relay.metrics", "metrics"),
        ("tenancy.relay.metrics_server", "metrics"),
        ("tenancy.observability.metrics", "metrics"),
        ("tenancy.observability.tracing", "otel"),
    ],
)
def test_module_that_needs_an_extra_names_its_install_line(module: str, extra: str) -> None:
    result = _run("import", module)

    assert result.returncode != 0
    assert f"pip install 'tenancy[{extra}]'" in result.stderr
