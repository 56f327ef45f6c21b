"""Reading the tenancy attributes of captured log records."""

from __future__ import annotations

import logging
from typing import Any

FIELDS = ("org_id", "operation", "request_id", "status")


def context(record: logging.LogRecord) -> dict[str, Any]:
    """Return the tenancy attributes of ``record`` (absent ones as ``None``)."""
    return {name: getattr(record, name, None) for name in FIELDS}


def warnings_of(records: list[logging.LogRecord], logger: str) -> list[dict[str, Any]]:
    """Return the context of each WARNING-or-above record of ``logger``."""
    return [
        {**context(r), "message": r.getMessage()}
        for r in records
        if r.name == logger and r.levelno >= logging.WARNING
    ]
