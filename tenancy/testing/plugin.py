"""pytest plugin: the tenant-isolation checks, run against a service's migrated database.

Installed with the package (``pytest11`` entry point) and off until enabled::

    pytest --tenancy-isolation --tenancy-database-url postgresql://postgres@db/service

The URL (or ``TENANCY_ISOLATION_DATABASE_URL``, else ``TENANCY_ADMIN_DATABASE_URL``)
must be a superuser's: the checks switch to the application role inside
transactions that are rolled back, so they leave no data behind (on a Citus
coordinator the probe's rows are committed, then deleted; ``--tenancy-fixtures``). The schema's
tenant column, binding and app role come from ``[tool.tenancy]`` in the
project's ``pyproject.toml`` (see ``tenancy.audit.isolation_config``) and the
``--tenancy-*`` options. Every tenant table gets one test item per check, under
the ``tenancy-isolation`` node, marked ``tenancy_isolation``; a database with no
tenant table at all fails (``nothing_checked``) rather than passing empty. Unique
keys that are global tokens of the service's own tables are declared with
``--tenancy-global-unique NAME`` or the ``tenancy_global_unique`` ini option.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tenancy.testing.result import CheckOptions, CheckResult

# Nothing of the library (SQLAlchemy, asyncpg, pydantic) is imported until the
# checks are enabled: a service's own test run must not pay for, or break on, it.

NODE = "tenancy-isolation"
URL_ENV = ("TENANCY_ISOLATION_DATABASE_URL", "TENANCY_ADMIN_DATABASE_URL")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the options that enable and aim the checks."""
    group = parser.getgroup("tenancy", "tenant isolation checks (tenancy.testing)")
    group.addoption(
        "--tenancy-isolation",
        action="store_true",
        default=False,
        help="run the tenant-isolation checks against --tenancy-database-url",
    )
    group.addoption(
        "--tenancy-database-url",
        default=None,
        help=f"superuser URL of the migrated database (default: ${' or $'.join(URL_ENV)})",
    )
    group.addoption(
        "--tenancy-app-role",
        default=None,
        help="the role the application connects as (default: $TENANCY_APP_ROLE, else tenancy_app)",
    )
    for flag, text in (
        ("--tenancy-tenant-column", "the column holding the tenant (default: org_id)"),
        ("--tenancy-tenant-setting", "the setting the policies read (default: app.org_id)"),
        ("--tenancy-tenant-binding", "SQL binding a tenant, with {tenant} for its value"),
    ):
        group.addoption(flag, default=None, help=text)
    for flag, text in (
        ("--tenancy-schema", "a schema to check (default: every non-system schema)"),
        ("--tenancy-global-table", "a table without tenant rows by design"),
    ):
        group.addoption(flag, action="append", default=[], help=f"{text}; repeatable")
    group.addoption(
        "--tenancy-allow-busy",
        action="store_true",
        default=False,
        help="probe even while other sessions work in the database (the probes take locks)",
    )
    group.addoption(
        "--tenancy-fixtures",
        choices=("auto", "rolled-back", "committed"),
        default="auto",
        help="how the probe holds its rows: rolled back, or committed and deleted afterwards "
        "(needed on Citus); default: committed on a Citus coordinator",
    )
    group.addoption(
        "--tenancy-global-unique",
        action="append",
        default=[],
        metavar="NAME",
        help="a unique index that is a random global token (may omit org_id); repeatable",
    )
    parser.addini(
        "tenancy_global_unique",
        type="linelist",
        default=[],
        help="unique indexes that are random global tokens (may omit org_id)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; refuse to start when enabled without a database."""
    config.addinivalue_line("markers", "tenancy_isolation: a tenant-isolation check (plugin)")
    if config.getoption("tenancy_isolation") and _database_url(config) is None:
        raise pytest.UsageError(
            f"--tenancy-isolation needs --tenancy-database-url or ${URL_ENV[0]}"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the check items (before -k and -m select among them)."""
    url = _database_url(config)
    if not config.getoption("tenancy_isolation") or url is None:
        return
    from tenancy.audit.isolation_config import load_config
    from tenancy.schema.role_names import APP_ROLE
    from tenancy.testing.result import CheckOptions, library_global_tokens

    base = load_config(config.rootpath)
    app_role = config.getoption("tenancy_app_role")
    if app_role is None and base.app_role == APP_ROLE:
        app_role = os.environ.get("TENANCY_APP_ROLE")
    options = CheckOptions(
        config=base.with_options(
            app_role=app_role,
            schemas=config.getoption("tenancy_schema"),
            tenant_column=config.getoption("tenancy_tenant_column"),
            tenant_setting=config.getoption("tenancy_tenant_setting"),
            tenant_binding=config.getoption("tenancy_tenant_binding"),
            global_tables=config.getoption("tenancy_global_table"),
        ),
        global_unique=library_global_tokens()
        | frozenset(config.getoption("tenancy_global_unique"))
        | frozenset(config.getini("tenancy_global_unique")),
        allow_busy=config.getoption("tenancy_allow_busy"),
        fixtures=config.getoption("tenancy_fixtures"),
    )
    collector = IsolationChecks.from_parent(
        session, name=NODE, nodeid=NODE, url=url, options=options
    )
    # Reported like any collector, so a database that cannot be reached is a
    # collection error that fails the run rather than an empty one.
    session.ihook.pytest_collectstart(collector=collector)
    report = session.ihook.pytest_make_collect_report(collector=collector)
    session.ihook.pytest_collectreport(report=report)
    if report.passed:
        items.extend(item for item in report.result if isinstance(item, pytest.Item))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the check items' cases tried and failures, per category and per table."""
    outcomes: dict[str, str] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "nodeid", "").startswith(f"{NODE}::"):
                # An error at teardown must not hide a pass or failure at call.
                outcomes.setdefault(report.nodeid, outcome)
    if not outcomes:
        return
    categories: dict[str, list[str]] = {}
    subjects: dict[str, list[str]] = {}
    for nodeid, outcome in outcomes.items():
        category = _CATEGORIES.get(nodeid, "other")
        categories.setdefault(category, []).append(outcome)
        subject = nodeid.removeprefix(f"{NODE}::").rsplit("::", 1)[0]
        if "." in subject:
            subjects.setdefault(subject, []).append(outcome)
    terminalreporter.section("tenancy isolation checks")
    for category, mine in categories.items():
        failures = sum(o != "passed" for o in mine)
        terminalreporter.write_line(f"{category:<10} {len(mine):>4} cases, {failures} failed")
    for subject, mine in sorted(subjects.items()):
        failures = sum(o != "passed" for o in mine)
        terminalreporter.write_line(f"checked {subject}: {len(mine)} cases, {failures} failed")


#: The category of each check item by node id, filled at collection.
_CATEGORIES: dict[str, str] = {}


class CheckFailed(Exception):
    """One isolation check found a gap."""


class IsolationChecks(pytest.Collector):
    """The checks of one database: runs them all at collection, one item per result."""

    def __init__(self, *, url: str, options: CheckOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.options = options

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        """Return one item per (subject, check), and a failing one if nothing was checked."""
        from tenancy.testing.runner import check_database, run_sync
        from tenancy.testing.security_check import not_run_reason

        results = run_sync(check_database(self.url, self.options))
        reason = not_run_reason(results, self.options.config)
        if reason is not None:
            from tenancy.testing.result import failed

            results = [*results, failed("nothing", "database", "nothing_checked", reason)]
        items: list[pytest.Item | pytest.Collector] = []
        for result in results:
            _CATEGORIES[f"{NODE}::{result.case_id}"] = result.category
            items.append(
                IsolationCheck.from_parent(
                    self, name=result.case_id, result=result, category=result.category
                )
            )
        return items


class IsolationCheck(pytest.Item):
    """One check on one subject; passes when the database isolates tenants there."""

    def __init__(self, *, result: CheckResult, category: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.category = category
        self.add_marker("tenancy_isolation")

    def runtest(self) -> None:
        """Fail with the check's finding unless it passed."""
        if not self.result.passed:
            raise CheckFailed(self.result.detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """Show the finding alone, not a traceback into the plugin."""
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Name the item by its node id."""
        return self.path, None, f"{NODE}::{self.name}"


def _database_url(config: pytest.Config) -> str | None:
    url: str | None = config.getoption("tenancy_database_url")
    return url or next((os.environ[name] for name in URL_ENV if os.environ.get(name)), None)
