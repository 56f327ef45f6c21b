"""Fixtures of the security suite, and its summary: cases tried per category."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tenancy import Database, TenancySettings
from tenancy.settings import CHAIN_ROLE
from tests.security.support import Seeded, connect, seed_tenant

#: Summary categories by test module; a module not listed is named after its file.
CATEGORIES = {
    "test_query_shapes": "query shapes",
    "test_prepared_statements": "query shapes",
    "test_privileges": "privileges",
    "test_leak_channels": "leak channels",
    "test_error_details": "leak channels",
    "test_pgbouncer": "pooler",
    "test_plugin": "plugin and security-check",
    "test_security_check": "plugin and security-check",
    "test_foreign_schemas": "plugin and security-check",
    "test_probe": "plugin and security-check",
}


def pytest_configure(config: pytest.Config) -> None:
    """Load pytester for the plugin tests.

    ``pytest_plugins`` may only be declared in the top-level conftest.
    """
    config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="module")
async def pair(db: Database) -> tuple[Seeded, Seeded]:
    """Two seeded tenants shared by a module's read-only tests."""
    return await seed_tenant(db, "alpha"), await seed_tenant(db, "beta")


@pytest.fixture
async def app_conn(settings: TenancySettings) -> AsyncIterator[asyncpg.Connection]:
    """A raw asyncpg connection as the application role, outside the library."""
    connection = await connect(settings.app_url())
    yield connection
    await connection.close()


@pytest.fixture
async def chain_conn(settings: TenancySettings) -> AsyncIterator[asyncpg.Connection]:
    """A raw asyncpg connection as the chain-jobs role, outside the library."""
    connection = await connect(settings.url_for_role(CHAIN_ROLE))
    yield connection
    await connection.close()


@pytest.fixture
async def admin_conn(admin_url: URL) -> AsyncIterator[asyncpg.Connection]:
    """A raw superuser connection, for setting up objects the app role must not create."""
    connection = await connect(admin_url)
    yield connection
    await connection.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print cases tried and failures per category, for every test marked ``security``."""
    outcomes: dict[str, tuple[str, str]] = {}
    for outcome, reports in terminalreporter.stats.items():
        for report in reports:
            if not isinstance(report, pytest.TestReport) or "security" not in report.keywords:
                continue
            if outcome == "passed":
                outcomes.setdefault(report.nodeid, (category_of(report.nodeid), outcome))
            elif outcome:
                # Any phase that did not pass decides the test's outcome.
                outcomes[report.nodeid] = (category_of(report.nodeid), outcome)
    if not outcomes:
        return
    counts = Counter(outcomes.values())
    terminalreporter.section("security suite: cases per category")
    for category in sorted({c for c, _ in counts}):
        mine = {outcome: n for (c, outcome), n in counts.items() if c == category}
        failures = mine.get("failed", 0) + mine.get("error", 0) + mine.get("xpassed", 0)
        others = ", ".join(
            f"{n} {o}" for o, n in sorted(mine.items()) if o not in ("passed", "failed", "error")
        )
        terminalreporter.write_line(
            f"{category:<26} {sum(mine.values()):>4} cases, {failures} failed"
            + (f" ({others})" if others else "")
        )


def category_of(nodeid: str) -> str:
    """Return the summary category of a test: by module here, by directory elsewhere."""
    path = Path(nodeid.split("::", 1)[0])
    if path.stem in CATEGORIES:
        return CATEGORIES[path.stem]
    return path.parent.name if path.parent.name not in ("tests", "") else path.stem
