"""What the security-check tests on the cluster share: running the tools, counting rows left."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tenancy.cli.command import main
from tenancy.testing import CheckOptions, TenantTable, discover, run_sync
from tests.citus.cluster import CitusCluster

PLUGIN = "tenancy.testing.plugin"


def security_check(capsys: pytest.CaptureFixture[str], url: URL, *options: str) -> tuple[int, str]:
    """Run ``tenancy security-check`` on ``url``; return its exit code and its output."""
    code = main(["security-check", "--database-url", _rendered(url), *options])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_plugin(project: Path, url: URL, *options: str) -> subprocess.CompletedProcess[str]:
    """Run pytest with the plugin in ``project`` as a service's CI does, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    # A bare service project: only the plugin, loaded by -p.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider"]
    command += ["--tenancy-isolation", "--tenancy-database-url", _rendered(url), *options]
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def rows_left(cluster: CitusCluster, url: URL) -> dict[str, int]:
    """Return the tenant tables of ``url``'s database that hold rows, with their counts."""
    tables = run_sync(discover(url, CheckOptions()))
    counts = asyncio.run(_counts(cluster, str(url.database), tables))
    return {table: count for table, count in counts.items() if count}


async def _counts(cluster: CitusCluster, dbname: str, tables: list[TenantTable]) -> dict[str, int]:
    connection = await cluster.connect(dbname)
    try:
        return {
            table.qualified: await connection.fetchval(
                f'SELECT count(*) FROM "{table.schema}"."{table.name}"'
            )
            for table in tables
        }
    finally:
        await connection.close()


def _rendered(url: URL) -> str:
    return url.render_as_string(hide_password=False)
