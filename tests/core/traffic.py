"""Recording what reaches the database: statements sent and pool checkouts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Traffic:
    """Statements sent and connections checked out while recording."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[Traffic]:
    """Record every statement ``engine`` sends and every pool checkout in the block."""
    seen = Traffic()
    sync_engine = engine.sync_engine

    def on_statement(*args: Any) -> None:
        seen.statements.append(args[2])

    def on_checkout(*args: Any) -> None:
        seen.checkouts += 1

    event.listen(sync_engine, "before_cursor_execute", on_statement)
    event.listen(sync_engine.pool, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_statement)
        event.remove(sync_engine.pool, "checkout", on_checkout)
