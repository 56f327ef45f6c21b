"""Reusable tenant-isolation checks, as a library and as a pytest plugin.

The pytest plugin lives in ``tenancy.testing.plugin`` (loaded by pytest through the
``pytest11`` entry point); this package imports nothing from pytest.

Names are imported on first use (``tenancy.exports``).
"""

from typing import TYPE_CHECKING

from tenancy.exports import lazy_exports

_EXPORTS = {
    "CATEGORIES": "tenancy.testing.result",
    "CheckOptions": "tenancy.testing.result",
    "CheckResult": "tenancy.testing.result",
    "TenantTable": "tenancy.testing.result",
    "check_database": "tenancy.testing.runner",
    "discover": "tenancy.testing.runner",
    "library_global_tokens": "tenancy.testing.result",
    "run_sync": "tenancy.testing.runner",
    "tally": "tenancy.testing.result",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from tenancy.testing.result import CATEGORIES as CATEGORIES
    from tenancy.testing.result import CheckOptions as CheckOptions
    from tenancy.testing.result import CheckResult as CheckResult
    from tenancy.testing.result import TenantTable as TenantTable
    from tenancy.testing.result import library_global_tokens as library_global_tokens
    from tenancy.testing.result import tally as tally
    from tenancy.testing.runner import check_database as check_database
    from tenancy.testing.runner import discover as discover
    from tenancy.testing.runner import run_sync as run_sync

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
