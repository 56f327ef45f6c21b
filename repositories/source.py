"""What a repository works with: its aggregates, and the transaction it runs in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tenancy.db.connection import TenantConnection
from tenancy.events.domain_event import DomainEvent

IdT = TypeVar("IdT")


class Aggregate(Protocol):
    """What the base repository needs of a model instance."""

    id: Any

    def record_event(self, event: object) -> None:
        """Queue a domain event until commit."""

    def pull_events(self) -> list[object]:
        """Return and forget queued events."""


ModelT = TypeVar("ModelT", bound=Aggregate)


class TransactionSource(Protocol):
    """What a repository needs of its unit of work: the session and the driver."""

    org_id: uuid.UUID

    @property
    def dialect(self) -> Dialect:
        """The engine's dialect, which the repositories compile their SQL with."""

    def adopt_inserted(self, obj: Any) -> Any:
        """Make a just-inserted instance part of the unit of work (no SQL)."""

    def adopt_all(self, objs: list[Any]) -> list[Any]:
        """``adopt`` for many instances at once."""

    @property
    def session(self) -> AsyncSession:
        """The ORM session joined to the transaction."""

    def connection(self) -> AsyncConnection:
        """The Core connection of the transaction."""

    async def insert_with_event(
        self, insert_sql: str, values: Sequence[Any], event: DomainEvent
    ) -> Any:
        """Insert a row and outbox its created event in one statement; return RETURNING's row."""

    async def driver(self) -> TenantConnection:
        """The driver connection, inside the transaction."""
