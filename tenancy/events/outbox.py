"""The transactional outbox, writer side: events go in with the data, or not at all.

``write_outbox`` runs inside the unit of work's transaction, just before COMMIT.
The rows and the ``NOTIFY`` that wakes the relay share that transaction, so an
event exists (and the relay hears of it) if and only if the work committed;
Postgres delivers a notification only when its transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.context import session_tenant
from tenancy.errors import translated
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox_table import OutboxEvent
from tenancy.internals import positional_names

#: The channel ``write_outbox`` notifies and the relay listens on.
OUTBOX_CHANNEL = "tenancy_outbox"

OUTBOX_TABLE = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]

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
_INSERT_EVENTS_ORDER = positional_names(_INSERT_EVENTS_COMPILED)


def _event_params(org_id: uuid.UUID, events: Sequence[DomainEvent]) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "ids": [event.event_id for event in events],
        "aggregate_types": [type(event).aggregate_type for event in events],
        "aggregate_ids": [event.aggregate_id for event in events],
        "event_types": [event.event_type() for event in events],
        "payloads": [event.payload_json() for event in events],
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
    with translated():
        await connection.execute(_INSERT_EVENTS_SQL, *(params[k] for k in _INSERT_EVENTS_ORDER))


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
) -> Any:
    """Run ``insert_sql`` (``INSERT ... VALUES ($1..$n)``) and outbox ``event``, in one statement.

    Returns the row of the INSERT's ``RETURNING`` clause, if it has one (else ``None``).

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
        event.payload_json(),
        0,
    ]
    sql = _with_event_sql(insert_sql, len(values))
    with translated():
        if " RETURNING " in insert_sql:
            return await connection.fetchrow(sql, *args)
        await connection.execute(sql, *args)
    return None
