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


class EventCollector(Protocol):
    """A source that collects its aggregates' events and writes them at commit."""

    async def insert_with_event(
        self, insert_sql: str, values: Sequence[Any], event: DomainEvent
    ) -> Any:
        """Insert a row and outbox its created event in one statement; return RETURNING's row."""

    def events_written(self, events: Sequence[DomainEvent]) -> None:
        """Remember events a statement wrote to the outbox itself, for dispatch after commit."""


class TransactionSource(Protocol):
    """What a repository needs of its transaction: the tenant, the session and the driver.

    A unit of work is one; a plain session is wrapped in ``SessionSource``.
    """

    @property
    def org_id(self) -> uuid.UUID:
        """The transaction's tenant."""

    @property
    def event_collector(self) -> EventCollector | None:
        """The source itself if it collects events; ``None``: the repository keeps ``seen``."""

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

    async def core_connection(self) -> AsyncConnection:
        """The Core connection of the transaction."""

    async def driver(self) -> TenantConnection:
        """The driver connection, inside the transaction."""
