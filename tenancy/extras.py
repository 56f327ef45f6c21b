"""Optional extras: an import that needs one fails with the install line that brings it.

A base install (``pip install tenancy``) migrates, opens units of work and runs
every repository but the wallets'. The chain gateway and wallets need
``tenancy[chain]``, the ASGI middleware and FastAPI dependency ``tenancy[web]``,
and the demo ``tenancy[demo]``.
"""

from __future__ import annotations


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def missing_extra(extra: str, error: ImportError) -> MissingExtra:
    """Return the error to raise (``from error``) when ``extra``'s dependency is missing."""
    missing = error.name or "a dependency"
    return MissingExtra(
        f"{missing} is not installed: this part of tenancy needs the {extra!r} extra "
        f"(pip install 'tenancy[{extra}]')",
        name=error.name,
    )


__all__ = ["MissingExtra", "missing_extra"]
