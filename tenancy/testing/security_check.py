"""``tenancy security-check``: run the isolation checks on a database and print a summary.

The checks are those of the pytest plugin (``tenancy.testing``), one implementation:
for the application role, for every tenant table's catalog set-up, the policy
content the audit reads, and behavioural probes acting as the application role.
The exit code is 0 when every case passed, 3 when any failed, and 2 when the
checks could not run: an unreachable database, a URL that is not a superuser's,
an app role that does not exist, or no tenant table to check at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.errors import TenancyError
from tenancy.testing.result import (
    ROLE,
    CheckOptions,
    CheckResult,
    FixtureMode,
    library_global_tokens,
    tally,
)
from tenancy.testing.runner import check_database, run_sync

EXIT_OK = 0
EXIT_NOT_RUN = 2
EXIT_FAILURES = 3


def run(
    database_url: str,
    config: IsolationConfig | None = None,
    *,
    global_unique: Iterable[str] = (),
    allow_busy: bool = False,
    fixtures: FixtureMode = "auto",
    out: TextIO | None = None,
) -> int:
    """Check the database at ``database_url`` (a superuser URL), print, return an exit code.

    ``global_unique`` adds unique indexes that are global tokens of the service's
    own tables to those of the library's. ``allow_busy`` lets the probes run while
    other sessions work in the database. ``fixtures`` says how the probe holds its
    rows (``auto``: committed and deleted afterwards on Citus, else rolled back).
    """
    stream = out if out is not None else sys.stdout
    config = config or IsolationConfig()
    options = CheckOptions(
        config=config,
        global_unique=library_global_tokens() | frozenset(global_unique),
        allow_busy=allow_busy,
        fixtures=fixtures,
    )
    try:
        results = run_sync(check_database(database_url, options))
    except TenancyError as exc:
        stream.write(f"security-check could not run: {exc}\n")
        return EXIT_NOT_RUN
    stream.write(render(results))
    reason = not_run_reason(results, config)
    if reason is not None:
        stream.write(f"security-check could not run: {reason}\n")
        return EXIT_NOT_RUN
    return EXIT_OK if all(result.passed for result in results) else EXIT_FAILURES


def not_run_reason(results: Sequence[CheckResult], config: IsolationConfig) -> str | None:
    """Return why ``results`` prove nothing (unknown app role, no table), if they do not."""
    if any(r.category == ROLE and r.detail == "the role does not exist" for r in results):
        return f"the app role {config.app_role} does not exist"
    if all(r.category == ROLE for r in results):
        scope = ", ".join(config.schemas) or "any schema"
        return (
            f"no tenant table (column {config.tenant_column}) in {scope}: nothing was "
            "checked; pass --tenant-column or --schema, or migrate the database"
        )
    return None


def render(results: Sequence[CheckResult]) -> str:
    """Return the summary: cases and failures per category, per table, then each failure."""
    counts = tally(results)
    failures = [result for result in results if not result.passed]
    tables: dict[str, list[CheckResult]] = {}
    for result in results:
        if "." in result.subject and result.category != ROLE:
            tables.setdefault(result.subject, []).append(result)
    lines = [
        f"tenancy security-check: {len(results)} cases, {len(failures)} failed",
        f"{'category':<10} {'cases':>6} {'failed':>7}",
        *(f"{category:<10} {tried:>6} {bad:>7}" for category, (tried, bad) in counts.items()),
        *(
            f"checked {subject}: {len(mine)} cases, {sum(not r.passed for r in mine)} failed"
            for subject, mine in tables.items()
        ),
        *(f"FAILED [{r.category}] {r.case_id}: {r.detail}" for r in failures),
    ]
    return "\n".join(lines) + "\n"
