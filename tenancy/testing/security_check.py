"""``tenancy security-check``: run the isolation checks on a database and print a summary.

The checks are those of the pytest plugin (``tenancy.testing``), one implementation:
for the application role, for every tenant table's catalog set-up, and
behavioural probes acting as the application role. The exit code is 0 when every
case passed, 1 when any failed, and 2 when the checks could not run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from tenancy.errors import TenancyError
from tenancy.settings import APP_ROLE
from tenancy.testing.result import CheckOptions, CheckResult, library_global_tokens, tally
from tenancy.testing.runner import check_database, run_sync

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_NOT_RUN = 2


def run(
    database_url: str,
    *,
    global_unique: Iterable[str] = (),
    app_role: str = APP_ROLE,
    out: TextIO | None = None,
) -> int:
    """Check the database at ``database_url`` (a superuser URL), print, return an exit code.

    ``global_unique`` adds unique indexes that are global tokens of the service's
    own tables to those of the library's.
    """
    stream = out if out is not None else sys.stdout
    options = CheckOptions(
        app_role=app_role, global_unique=library_global_tokens() | frozenset(global_unique)
    )
    try:
        results = run_sync(check_database(database_url, options))
    except TenancyError as exc:
        stream.write(f"security-check could not run: {exc}\n")
        return EXIT_NOT_RUN
    stream.write(render(results))
    return EXIT_OK if all(result.passed for result in results) else EXIT_FAILURES


def render(results: Sequence[CheckResult]) -> str:
    """Return the summary: cases and failures per category, then each failure."""
    counts = tally(results)
    failures = [result for result in results if not result.passed]
    lines = [
        f"tenancy security-check: {len(results)} cases, {len(failures)} failed",
        f"{'category':<10} {'cases':>6} {'failed':>7}",
        *(f"{category:<10} {tried:>6} {bad:>7}" for category, (tried, bad) in counts.items()),
        *(f"FAILED [{r.category}] {r.case_id}: {r.detail}" for r in failures),
    ]
    return "\n".join(lines) + "\n"
