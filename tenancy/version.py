"""The installed version of tenancy, from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """Return the version of the installed ``tenancy`` distribution.

    A checkout that was never installed has no metadata; it reports ``0+unknown``
    (a valid PEP 440 local version that sorts below every release) rather than
    failing at import.
    """
    try:
        return version("tenancy")
    except PackageNotFoundError:
        return "0+unknown"


#: The installed version (``tenancy.__version__``).
__version__ = installed_version()
