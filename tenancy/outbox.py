"""The transactional outbox, writer side: events go in with the data, or not at all.

``write_outbox`` runs inside the unit of work's transaction, just before COMMIT.
The rows and the ``NOTIFY`` that wakes the relay share that transaction, so an
event exists (and the relay hears of it) if and only if the work committed;
Postgres delivers a notification only when its transaction commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models.enums import OutboxStatus
from models.outbox import OutboxEvent
from tenancy.errors import raise_translated
from tenancy.events import DomainEvent
from tenancy.relay_settings import RelaySettings
from tenancy.session import session_tenant

#: The channel ``write_outbox`` notifies and the relay listens on.
OUTBOX_CHANNEL = "tenancy_outbox"

OUTBOX_TABLE = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]

# Timestamps come from the database clock, not the application's: ``available_at``
# is compared with the database's now() when claiming, and a fast application
# clock would hide fresh events. clock_timestamp() advances row by row, so it
# also orders the rows of one statement.
# One statement inserts a transaction's events and wakes the relay. Timestamps come
# from the database clock, not the application's: ``available_at`` is compared with
# the database's now() when claiming, and a fast application clock would hide fresh
# events. clock_timestamp() advances row by row, so it also orders the rows.
_INSERT_EVENTS = text(
    """
    WITH inserted AS (
        INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id, event_type,
                                   payload, position, occurred_at, available_at)
        SELECT CAST(:org_id AS uuid), e.id, e.aggregate_type, e.aggregate_id, e.event_type,
               CAST(e.payload AS jsonb), e.position, clock_timestamp(), clock_timestamp()
        FROM unnest(CAST(:ids AS uuid[]), CAST(:aggregate_types AS text[]),
                    CAST(:aggregate_ids AS text[]), CAST(:event_types AS text[]),
                    CAST(:payloads AS text[]), CAST(:positions AS int[]))
             AS e(id, aggregate_type, aggregate_id, event_type, payload, position)
        ORDER BY e.position
        RETURNING 1
    )
    SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM inserted)
    """
)
_INSERT_EVENTS_COMPILED = _INSERT_EVENTS.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
_INSERT_EVENTS_SQL = str(_INSERT_EVENTS_COMPILED)
_INSERT_EVENTS_ORDER = tuple(_INSERT_EVENTS_COMPILED.positiontup or ())


def _event_params(org_id: uuid.UUID, events: Sequence[DomainEvent]) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "ids": [event.event_id for event in events],
        "aggregate_types": [type(event).aggregate_type for event in events],
        "aggregate_ids": [event.aggregate_id for event in events],
        "event_types": [event.event_type() for event in events],
        "payloads": [json.dumps(event.payload(), separators=(",", ":")) for event in events],
        "positions": list(range(len(events))),
        "channel": OUTBOX_CHANNEL,
    }


async def insert_events(
    connection: asyncpg.Connection, org_id: uuid.UUID, events: Sequence[DomainEvent]
) -> None:
    """Insert ``events`` for ``org_id`` and notify the relay, in one round trip.

    Runs on the driver connection of the tenant transaction that produced the
    events (the unit of work's), before its COMMIT; RLS checks ``org_id``.

    Raises:
        IsolationViolation: ``org_id`` is not the transaction's tenant.
        Conflict: an event id was written before (event ids are unique).
    """
    if not events:
        return
    params = _event_params(org_id, events)
    try:
        await connection.execute(_INSERT_EVENTS_SQL, *(params[k] for k in _INSERT_EVENTS_ORDER))
    except Exception as exc:
        raise_translated(exc)
        raise


async def write_outbox(session: AsyncSession, events: Sequence[DomainEvent]) -> None:
    """Insert ``events`` into the outbox of the session's tenant and wake the relay.

    Must run inside the tenant transaction that produced the events (before its
    COMMIT). ``position`` keeps their order inside the transaction.

    Raises:
        TenantContextRequired: the session has no tenant.
        Conflict: an event id was written before (event ids are unique).
    """
    if not events:
        return
    org_id = session_tenant(session.sync_session)
    # Flush first so that the row locks of the aggregates these events describe are
    # held before the outbox rows get their timestamps: two transactions changing
    # one aggregate then write its events in commit order.
    await session.flush()
    await session.execute(_INSERT_EVENTS, _event_params(org_id, events))


# -- Relay side ---------------------------------------------------------------------
#
# The relay connects as tenancy_relay (BYPASSRLS, privileges on this table only)
# and never advances a cursor: a row is claimable while it is pending and its
# ``available_at`` has passed. Claiming moves ``available_at`` to the end of the
# lease, so one condition covers "never tried", "lease of a crashed relay ran out"
# and "back-off elapsed".
#
# Order per aggregate, with any number of relays:
#   * claims are serialized by a transaction-scoped advisory lock (a claim is one
#     short statement; sending and settling still run in parallel), so a claim
#     always sees the leases of the claims before it;
#   * an aggregate with any pending row that is not claimable (leased elsewhere,
#     or backing off) is skipped entirely, so its later events cannot overtake;
#   * a claim takes rows in (occurred_at, position) order, so with an aggregate's
#     later row it also takes every earlier one.

#: Any fixed bigint; advisory locks are per database. ("tenancy" in ASCII.)
CLAIM_LOCK_KEY = 0x74656E616E6379

_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_CLAIM = text(
    """
    WITH blocked AS (
        SELECT DISTINCT org_id, aggregate_type, aggregate_id
        FROM outbox_events
        WHERE status = 'pending' AND available_at > statement_timestamp()
    ), picked AS (
        SELECT o.org_id, o.id
        FROM outbox_events AS o
        WHERE o.status = 'pending'
          AND o.available_at <= statement_timestamp()
          AND NOT EXISTS (
              SELECT 1 FROM blocked AS b
              WHERE b.org_id = o.org_id
                AND b.aggregate_type = o.aggregate_type
                AND b.aggregate_id = o.aggregate_id
          )
        ORDER BY o.occurred_at, o.position
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox_events AS o
    SET claimed_by = :relay_id,
        claimed_until = statement_timestamp() + make_interval(secs => :lease),
        available_at = statement_timestamp() + make_interval(secs => :lease)
    FROM picked
    WHERE o.org_id = picked.org_id AND o.id = picked.id
    RETURNING o.org_id, o.id, o.aggregate_type, o.aggregate_id, o.event_type,
              o.payload::text AS payload, o.attempts, o.occurred_at, o.position
    """
)
_KEYS = "unnest(CAST(:org_ids AS uuid[]), CAST(:ids AS uuid[])) AS k(org_id, id)"
_MARK_PUBLISHED = text(
    f"""
    UPDATE outbox_events AS o
    SET status = 'published', published_at = statement_timestamp(),
        claimed_by = NULL, claimed_until = NULL
    FROM {_KEYS}
    WHERE o.org_id = k.org_id AND o.id = k.id AND o.status = 'pending'
    """
)
_RELEASE = text(
    f"""
    UPDATE outbox_events AS o
    SET available_at = statement_timestamp(), claimed_by = NULL, claimed_until = NULL
    FROM {_KEYS}
    WHERE o.org_id = k.org_id AND o.id = k.id
      AND o.status = 'pending' AND o.claimed_by = :relay_id
    """
)
_FAIL = text(
    """
    UPDATE outbox_events AS o
    SET attempts = k.attempts, status = k.status, last_error = k.error,
        available_at = statement_timestamp() + make_interval(secs => k.delay),
        claimed_by = NULL, claimed_until = NULL
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:ids AS uuid[]), CAST(:attempts AS int[]),
                CAST(:statuses AS text[]), CAST(:errors AS text[]), CAST(:delays AS float8[]))
         AS k(org_id, id, attempts, status, error, delay)
    WHERE o.org_id = k.org_id AND o.id = k.id
      AND o.status = 'pending' AND o.claimed_by = :relay_id
    """
)
_DELETE_PUBLISHED = text(
    """
    DELETE FROM outbox_events AS o
    USING (
        SELECT org_id, id FROM outbox_events
        WHERE status = 'published'
          AND published_at < statement_timestamp() - make_interval(secs => :age)
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) AS old
    WHERE o.org_id = old.org_id AND o.id = old.id
    """
)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """An outbox row leased to this relay; ``payload`` is the stored JSON text."""

    org_id: uuid.UUID
    id: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Failure:
    """A claimed event the broker did not acknowledge.

    ``counted`` failures use up an attempt (the event itself failed); uncounted
    ones (the broker was unreachable) are retried after ``delay`` without penalty.
    ``permanent`` failures can never succeed and are dead-lettered at once.
    """

    event: ClaimedEvent
    error: str
    permanent: bool = False
    counted: bool = True
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Retry:
    """What happened to a failed event: when it is retried, or that it is dead."""

    failure: Failure
    attempts: int
    dead: bool
    delay: float


class RelayOutbox:
    """The relay's statements on ``outbox_events``, run as the relay role."""

    def __init__(self, engine: AsyncEngine, settings: RelaySettings) -> None:
        self.engine = engine
        self.settings = settings

    async def claim(self) -> list[ClaimedEvent]:
        """Lease up to ``batch_size`` claimable events, oldest first."""
        settings = self.settings
        params = {
            "limit": settings.batch_size,
            "relay_id": settings.relay_id,
            "lease": settings.lease_seconds,
        }
        async with _translated(), self.engine.begin() as connection:
            # A statement of its own: the claim's snapshot is taken after the lock.
            await connection.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
            result = await connection.execute(_CLAIM, params)
        # RETURNING follows no ORDER BY; the relay sends in outbox order.
        rows = sorted(result.all(), key=lambda row: (row.occurred_at, row.position))
        return [
            ClaimedEvent(
                org_id=row.org_id,
                id=row.id,
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                event_type=row.event_type,
                payload=row.payload,
                attempts=row.attempts,
            )
            for row in rows
        ]

    def plan_retry(self, failure: Failure) -> Retry:
        """Decide the next attempt count, delay and whether ``failure`` dead-letters."""
        attempts = failure.event.attempts + (1 if failure.counted else 0)
        dead = failure.permanent or attempts >= self.settings.max_attempts
        delay = failure.delay if not failure.counted else self.settings.backoff(attempts)
        return Retry(failure, attempts, dead, 0.0 if dead else delay)

    async def settle(
        self,
        published: Sequence[ClaimedEvent],
        retries: Sequence[Retry],
        released: Sequence[ClaimedEvent],
    ) -> None:
        """Record a batch's outcome in one transaction.

        ``published`` rows were acknowledged by the broker; ``retries`` come from
        ``plan_retry``; ``released`` rows were not sent and become claimable at once
        (behind any failed earlier event of their aggregate, which blocks them
        while it backs off).
        """
        async with _translated(), self.engine.begin() as connection:
            if published:
                await connection.execute(_MARK_PUBLISHED, _keys(published))
            if released:
                params = {**_keys(released), "relay_id": self.settings.relay_id}
                await connection.execute(_RELEASE, params)
            if retries:
                await connection.execute(_FAIL, self._fail_params(retries))

    def _fail_params(self, retries: Sequence[Retry]) -> dict[str, Any]:
        return {
            **_keys([r.failure.event for r in retries]),
            "attempts": [r.attempts for r in retries],
            "statuses": [
                OutboxStatus.DEAD.value if r.dead else OutboxStatus.PENDING.value for r in retries
            ],
            # Broker messages are short; cap them anyway, the column is for people.
            "errors": [r.failure.error[:2000] for r in retries],
            "delays": [r.delay for r in retries],
            "relay_id": self.settings.relay_id,
        }

    async def delete_published(self) -> int:
        """Delete published rows older than the retention, in bounded batches."""
        params = {"age": self.settings.retention_seconds, "limit": self.settings.retention_batch}
        deleted = 0
        while True:
            async with _translated(), self.engine.begin() as connection:
                count = (await connection.execute(_DELETE_PUBLISHED, params)).rowcount
            deleted += count
            if count < self.settings.retention_batch:
                return deleted


def _keys(events: Sequence[ClaimedEvent]) -> dict[str, list[uuid.UUID]]:
    return {"org_ids": [e.org_id for e in events], "ids": [e.id for e in events]}


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        raise_translated(exc)
        raise


# -- Writing an aggregate's first event with its row ---------------------------------
#
# Creating an aggregate is the most common write. Its created event goes into the
# outbox in the very statement that inserts the row (a data-modifying CTE), and
# the relay is notified by that statement too: one round trip instead of two, in
# the same transaction, so the event still exists if and only if the row commits.


@cache
def _with_event_sql(insert_sql: str, values: int) -> str:
    # The event's parameters follow the row's; the wake-up rides in the CTE, which
    # Postgres always runs because it modifies data.
    n = values
    return (
        "WITH event AS (INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id,"
        " event_type, payload, position, occurred_at, available_at)"
        f" SELECT ${n + 1}::uuid, ${n + 2}::uuid, ${n + 3}::text, ${n + 4}::text,"
        f" ${n + 5}::text, ${n + 6}::jsonb, ${n + 7}::int, clock_timestamp(), clock_timestamp()"
        f" FROM (SELECT pg_notify('{OUTBOX_CHANNEL}', '')) AS wake) {insert_sql}"
    )


async def insert_with_event(
    connection: asyncpg.Connection,
    insert_sql: str,
    values: Sequence[Any],
    org_id: uuid.UUID,
    event: DomainEvent,
) -> None:
    """Run ``insert_sql`` (``INSERT ... VALUES ($1..$n)``) and outbox ``event``, in one statement.

    Raises:
        Conflict, ForeignKeyViolation, IsolationViolation, InvalidData: as for the insert.
    """
    args = [
        *values,
        org_id,
        event.event_id,
        type(event).aggregate_type,
        event.aggregate_id,
        event.event_type(),
        json.dumps(event.payload(), separators=(",", ":")),
        0,
    ]
    try:
        await connection.execute(_with_event_sql(insert_sql, len(values)), *args)
    except Exception as exc:
        raise_translated(exc)
        raise
