"""Render a ``RelayStatus`` as plain-text tables for ``tenancy relay status``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from tenancy.relay.admin import RelayStatus

# A broker error can be long (and repeat the record); the table shows its start.
_ERROR_WIDTH = 60


def format_status(status: RelayStatus) -> str:
    """Return the backlog summary, the dead events and the blocked aggregates."""
    dead_rows = [
        (
            str(e.id),
            str(e.org_id),
            f"{e.aggregate_type}/{e.aggregate_id}",
            e.event_type,
            str(e.attempts),
            _short(e.error),
        )
        for e in status.dead
    ]
    blocked_rows = [
        (str(b.org_id), f"{b.aggregate_type}/{b.aggregate_id}", str(b.dead_id), str(b.waiting))
        for b in status.blocked
    ]
    lines = [
        f"backlog: {status.backlog} pending event(s), "
        f"{status.failing} after a failed attempt; oldest {_age(status.oldest)}",
        f"dead-lettered: {len(status.dead)}; blocked aggregates: {len(status.blocked)}",
        "",
        "Dead events (tenancy relay requeue|discard EVENT_ID)",
        _grid(("EVENT", "ORG", "AGGREGATE", "TYPE", "ATTEMPTS", "ERROR"), dead_rows),
        "",
        "Blocked aggregates (later events wait behind the dead one)",
        _grid(("ORG", "AGGREGATE", "DEAD EVENT", "WAITING"), blocked_rows),
    ]
    return "\n".join(lines)


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = max(age.total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def _short(error: str | None) -> str:
    if not error:
        return "-"
    line = error.splitlines()[0]
    return line if len(line) <= _ERROR_WIDTH else line[: _ERROR_WIDTH - 3] + "..."


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "  (none)"
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
