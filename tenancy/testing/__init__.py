"""Reusable tenant-isolation checks, as a library and as a pytest plugin.

The pytest plugin lives in ``tenancy.testing.plugin`` (loaded by pytest through the
``pytest11`` entry point); this package imports nothing from pytest.
"""

from tenancy.testing.result import (
    CATEGORIES,
    CheckOptions,
    CheckResult,
    TenantTable,
    library_global_tokens,
    tally,
)
from tenancy.testing.runner import check_database, discover, run_sync

__all__ = [
    "CATEGORIES",
    "CheckOptions",
    "CheckResult",
    "TenantTable",
    "check_database",
    "discover",
    "library_global_tokens",
    "run_sync",
    "tally",
]
