"""Locate the migrations and SQL files, in a checkout or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_BUNDLED = _PACKAGE_DIR / "_bundled"
_CHECKOUT = _PACKAGE_DIR.parent


def _root() -> Path:
    # A wheel carries copies under tenancy/_bundled (see pyproject's force-include);
    # a checkout or editable install uses the files at the repository root.
    return _BUNDLED if (_BUNDLED / "migrations").is_dir() else _CHECKOUT


def migrations_dir() -> Path:
    """Return the Alembic script directory."""
    return _root() / "migrations"


def policies_dir() -> Path:
    """Return the directory holding one policy SQL file per table."""
    return _root() / "sql" / "policies"


def functions_dir() -> Path:
    """Return the directory holding the resolver function SQL files."""
    return _root() / "sql" / "functions"


def alembic_ini() -> Path:
    """Return the Alembic configuration file."""
    return _root() / "alembic.ini"
