"""The operator's side of the outbox: what the relay is stuck on, and how to unstick it.

A dead event stops its aggregate: the relay publishes none of that aggregate's
later events (they would overtake it) until an operator either re-queues the
dead event (``requeue``: it goes back to pending with fresh attempts and is
published first) or gives it up (``discard``: it is never published and the
aggregate goes on). Both run as the relay role, in one statement, and wake a
running relay with the outbox notification.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.db.engine import create_engine
from tenancy.errors import Conflict, NotFound, translated
from tenancy.events.outbox import OUTBOX_CHANNEL
from tenancy.events.outbox_table import OutboxStatus
from tenancy.relay.settings import RelaySettings, relay_url
from tenancy.settings import TenancySettings

_BACKLOG = text(
    """
    SELECT count(*) AS backlog,
           count(*) FILTER (WHERE last_error IS NOT NULL) AS failing,
           statement_timestamp() - min(occurred_at) AS oldest
    FROM outbox_events
    WHERE status = 'pending'
    """
)
_DEAD = text(
    """
    SELECT org_id, id, aggregate_type, aggregate_id, event_type, last_error, attempts
    FROM outbox_events
    WHERE status = 'dead'
    ORDER BY occurred_at, position
    LIMIT :limit
    """
)
# Every aggregate with a dead event is blocked; "waiting" counts its pending events.
_BLOCKED = text(
    """
    SELECT d.org_id, d.aggregate_type, d.aggregate_id, d.id AS dead_id,
           (SELECT count(*) FROM outbox_events AS p
            WHERE p.status = 'pending' AND p.org_id = d.org_id
              AND p.aggregate_type = d.aggregate_type
              AND p.aggregate_id = d.aggregate_id) AS waiting
    FROM (
        SELECT DISTINCT ON (org_id, aggregate_type, aggregate_id)
               org_id, aggregate_type, aggregate_id, id
        FROM outbox_events
        WHERE status = 'dead'
        ORDER BY org_id, aggregate_type, aggregate_id, occurred_at, position
    ) AS d
    ORDER BY waiting DESC, d.org_id, d.aggregate_type, d.aggregate_id
    LIMIT :limit
    """
)
_REQUEUE = text(
    """
    UPDATE outbox_events
    SET status = 'pending', attempts = 0, available_at = statement_timestamp(),
        claimed_by = NULL, claimed_until = NULL
    WHERE id = :id AND status = 'dead'
    RETURNING org_id, id, aggregate_type, aggregate_id, event_type, last_error, attempts
    """
)
_DISCARD = text(
    """
    UPDATE outbox_events
    SET status = 'discarded', claimed_by = NULL, claimed_until = NULL
    WHERE id = :id AND status = 'dead'
    RETURNING org_id, id, aggregate_type, aggregate_id, event_type, last_error, attempts
    """
)
# Only on the error path: the id alone is not indexed (the key is (org_id, id)).
# The gauges: each filter matches a partial index (pending, dead), so a refresh
# every few seconds does not scan the published rows kept for retention.
_PENDING_GAUGES = text(
    """
    SELECT count(*) AS backlog,
           coalesce(extract(epoch FROM statement_timestamp() - min(occurred_at)), 0) AS lag
    FROM outbox_events
    WHERE status = 'pending'
    """
)
_DEAD_GAUGES = text(
    """
    SELECT count(*) AS dead,
           count(DISTINCT (org_id, aggregate_type, aggregate_id)) AS blocked
    FROM outbox_events
    WHERE status = 'dead'
    """
)
_STATUS_OF = text("SELECT status FROM outbox_events WHERE id = :id LIMIT 1")
_WAKE = text("SELECT pg_notify(:channel, '')")


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """A dead-lettered outbox event, as the operator sees it."""

    org_id: uuid.UUID
    id: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    event_type: str
    error: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class BlockedAggregate:
    """An aggregate the relay will not publish: ``dead_id`` stops ``waiting`` later events."""

    org_id: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    dead_id: uuid.UUID
    waiting: int


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """The outbox backlog, its dead events and the aggregates they block."""

    backlog: int
    failing: int
    oldest: timedelta | None
    dead: list[DeadEvent]
    blocked: list[BlockedAggregate]


@dataclass(frozen=True, slots=True)
class OutboxGauges:
    """One reading of the outbox for the metrics: backlog, lag, dead events, blocked aggregates."""

    backlog: int
    lag_seconds: float
    dead: int
    blocked_aggregates: int


class RelayAdmin:
    """Status, requeue and discard on ``outbox_events``, run as the relay role."""

    def __init__(self, engine: AsyncEngine, *, limit: int = 1_000) -> None:
        self.engine = engine
        self.limit = limit

    async def status(self) -> RelayStatus:
        """Return the backlog, the dead events and the aggregates they block."""
        async with translated(), self.engine.connect() as connection:
            backlog = (await connection.execute(_BACKLOG)).one()
            dead = await connection.execute(_DEAD, {"limit": self.limit})
            dead_events = [_dead_event(row) for row in dead]
            blocked = await blocked_aggregates(connection, self.limit)
        return RelayStatus(
            backlog=backlog.backlog,
            failing=backlog.failing,
            oldest=backlog.oldest,
            dead=dead_events,
            blocked=blocked,
        )

    async def gauges(self) -> OutboxGauges:
        """Return the counts the relay's metrics export (cheap: partial indexes only)."""
        async with translated(), self.engine.connect() as connection:
            pending = (await connection.execute(_PENDING_GAUGES)).one()
            dead = (await connection.execute(_DEAD_GAUGES)).one()
        return OutboxGauges(
            backlog=int(pending.backlog),
            lag_seconds=float(pending.lag),
            dead=int(dead.dead),
            blocked_aggregates=int(dead.blocked),
        )

    async def blocked(self, limit: int) -> list[BlockedAggregate]:
        """Return up to ``limit`` aggregates stopped by a dead event, most waiting first."""
        async with translated(), self.engine.connect() as connection:
            return await blocked_aggregates(connection, limit)

    async def requeue(self, event_id: uuid.UUID) -> DeadEvent:
        """Put dead event ``event_id`` back to pending; its aggregate resumes with it.

        Raises:
            NotFound: no outbox event has this id.
            Conflict: the event is not dead (pending, published or discarded).
        """
        return await self._settle_dead(_REQUEUE, event_id)

    async def discard(self, event_id: uuid.UUID) -> DeadEvent:
        """Give dead event ``event_id`` up (never published); its aggregate resumes.

        Raises:
            NotFound: no outbox event has this id.
            Conflict: the event is not dead (pending, published or discarded).
        """
        return await self._settle_dead(_DISCARD, event_id)

    async def _settle_dead(self, statement: TextClause, event_id: uuid.UUID) -> DeadEvent:
        async with translated(), self.engine.begin() as connection:
            rows = (await connection.execute(statement, {"id": event_id})).all()
            if not rows:
                found = (await connection.execute(_STATUS_OF, {"id": event_id})).scalar()
                if found is None:
                    raise NotFound(f"no outbox event {event_id}")
                raise Conflict(f"outbox event {event_id} is {found}, not {OutboxStatus.DEAD}")
            # In the same transaction: the relay wakes once the change is visible.
            await connection.execute(_WAKE, {"channel": OUTBOX_CHANNEL})
        return _dead_event(rows[0])


@asynccontextmanager
async def open_relay_admin(
    settings: TenancySettings, relay_settings: RelaySettings | None = None
) -> AsyncIterator[RelayAdmin]:
    """Connect as the relay role (as ``open_relay`` does) and close the engine after."""
    url = relay_url(settings, relay_settings or RelaySettings())
    engine_settings = settings.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "application_name": "tenancy-relay-admin"}
    )
    engine = create_engine(engine_settings, url=url)
    try:
        yield RelayAdmin(engine)
    finally:
        await engine.dispose()


async def blocked_aggregates(connection: AsyncConnection, limit: int) -> list[BlockedAggregate]:
    """Return up to ``limit`` aggregates stopped by a dead event, most waiting events first."""
    result = await connection.execute(_BLOCKED, {"limit": limit})
    return [
        BlockedAggregate(
            org_id=row.org_id,
            aggregate_type=row.aggregate_type,
            aggregate_id=row.aggregate_id,
            dead_id=row.dead_id,
            waiting=row.waiting,
        )
        for row in result
    ]


def _dead_event(row: Row[Any]) -> DeadEvent:
    return DeadEvent(
        org_id=row.org_id,
        id=row.id,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        event_type=row.event_type,
        error=row.last_error,
        attempts=row.attempts,
    )
