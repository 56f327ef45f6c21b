"""The transactional outbox, writer side: events go in with the data, or not at all.

Events are written inside the transaction that produced them, before its COMMIT,
so an event exists if and only if the work committed. The relay is woken with a
notification on ``OUTBOX_CHANNEL``, which Postgres delivers only when its
transaction commits.

Every statement here is one Citus can route to the tenant's shard: plain
``INSERT ... VALUES`` into ``outbox_events`` (alone, or in a data-modifying CTE
beside the row whose event it is, both carrying the tenant's ``org_id``). An
``INSERT ... SELECT`` would run through the coordinator as COPY, which Citus
refuses under row-level security. The wake-up stays out of the routed
statements: a ``pg_notify`` inside them would run on a worker, where no relay
listens. The unit of work sends it with its COMMIT (``WAKE_RELAY``, one message);
``write_outbox`` sends it from the statement's outer query, which runs where the
client is connected.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import asyncpg
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.context import session_tenant
from tenancy.errors import translated
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox_table import OutboxEvent

#: The channel the writers notify and the relay listens on.
OUTBOX_CHANNEL = "tenancy_outbox"

#: Sent before COMMIT, in the same message, by a unit of work that wrote events.
WAKE_RELAY = f"NOTIFY {OUTBOX_CHANNEL}"

OUTBOX_TABLE = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]

#: Events per statement: 6 parameters each, far below the protocol's 32,767.
BATCH = 500

# The types of an event's own parameters, in order; the tenant's is shared by every row.
_EVENT_TYPES = ("uuid", "text", "text", "text", "jsonb", "int")


def _values(rows: int, placeholder: str, tenant: int, first: int) -> str:
    # Timestamps come from the database clock, not the application's: available_at
    # is compared with the database's clock when claiming, and a fast application
    # clock would hide fresh events. clock_timestamp() advances row by row, in the
    # order of the VALUES list (which is ``position`` order).
    def param(k: int, type_: str) -> str:
        return f"CAST({placeholder.format(k)} AS {type_})"

    width = len(_EVENT_TYPES)
    return ", ".join(
        "("
        + ", ".join(
            [param(tenant, "uuid")]
            + [param(first + width * r + c, t) for c, t in enumerate(_EVENT_TYPES)]
            + ["clock_timestamp()", "clock_timestamp()"]
        )
        + ")"
        for r in range(rows)
    )


_INSERT_INTO = (
    "INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id, event_type,"
    " payload, position, occurred_at, available_at) VALUES "
)


@lru_cache(maxsize=64)
def _insert_events_sql(rows: int) -> str:
    # One SQL text per row count: asyncpg prepares it once per connection.
    return _INSERT_INTO + _values(rows, "${}", tenant=1, first=2)


@lru_cache(maxsize=64)
def _write_outbox_statement(rows: int) -> TextClause:
    # The outer query runs on the node the client is connected to (the coordinator
    # on Citus), after the INSERT it refers to.
    values = _values(rows, ":p{}", tenant=0, first=1)
    return text(
        f"WITH inserted AS ({_INSERT_INTO}{values} RETURNING 1)"
        " SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM inserted)"
    )


def _event_args(org_id: uuid.UUID, events: Sequence[DomainEvent], start: int) -> list[Any]:
    args: list[Any] = [org_id]
    for position, event in enumerate(events, start):
        args += [
            event.event_id,
            type(event).aggregate_type,
            event.aggregate_id,
            event.event_type(),
            event.payload_json(),
            position,
        ]
    return args


def _batches(events: Sequence[DomainEvent]) -> list[tuple[int, Sequence[DomainEvent]]]:
    return [(start, events[start : start + BATCH]) for start in range(0, len(events), BATCH)]


async def insert_events(
    connection: asyncpg.Connection, org_id: uuid.UUID, events: Sequence[DomainEvent]
) -> None:
    """Insert ``events`` for ``org_id``, in one round trip per ``BATCH`` events.

    Runs on the driver connection of the tenant transaction that produced the
    events (the unit of work's), before its COMMIT; RLS checks ``org_id``. It
    does not wake the relay: the caller sends ``WAKE_RELAY`` with its COMMIT.

    Raises:
        IsolationViolation: ``org_id`` is not the transaction's tenant.
        Conflict: an event id was written before (event ids are unique).
    """
    with translated():
        for start, batch in _batches(events):
            sql = _insert_events_sql(len(batch))
            await connection.execute(sql, *_event_args(org_id, batch, start))


def outbox_events_json(events: Sequence[DomainEvent]) -> str:
    """Render ``events`` as the JSON array the database's ``write_outbox_events`` inserts.

    For a SECURITY DEFINER function that makes a change and writes its events in
    one call (the identity changes): on Citus one role may not write a tenant's
    shards after another did in the same transaction, so the function writes both.
    """
    items = []
    for position, event in enumerate(events):
        head = {
            "id": str(event.event_id),
            "aggregate_type": type(event).aggregate_type,
            "aggregate_id": event.aggregate_id,
            "event_type": event.event_type(),
            "position": position,
        }
        # The payload is JSON already: spliced in, not parsed and dumped again.
        items.append(f'{json.dumps(head)[:-1]}, "payload": {event.payload_json()}}}')
    return f"[{', '.join(items)}]"


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
    for start, batch in _batches(events):
        args = _event_args(org_id, batch, start)
        params: dict[str, Any] = {f"p{k}": value for k, value in enumerate(args)}
        params["channel"] = OUTBOX_CHANNEL
        await session.execute(_write_outbox_statement(len(batch)), params)


# -- Writing an aggregate's first event with its row ---------------------------------
#
# Creating an aggregate is the most common write. Its created event goes into the
# outbox in the very statement that inserts the row (a data-modifying CTE): one
# round trip instead of two, in the same transaction, so the event still exists if
# and only if the row commits. Both rows carry the tenant's org_id, so Citus routes
# the whole statement to the tenant's shard.


@cache
def _with_event_sql(insert_sql: str, values: int) -> str:
    # The event's parameters follow the row's.
    event = _values(1, "${}", tenant=values + 1, first=values + 2)
    return f"WITH event AS ({_INSERT_INTO}{event}) {insert_sql}"


async def insert_with_event(
    connection: asyncpg.Connection,
    insert_sql: str,
    values: Sequence[Any],
    org_id: uuid.UUID,
    event: DomainEvent,
) -> Any:
    """Run ``insert_sql`` (``INSERT ... VALUES ($1..$n)``) and outbox ``event``, in one statement.

    Returns the row of the INSERT's ``RETURNING`` clause, if it has one (else ``None``).
    It does not wake the relay: the caller sends ``WAKE_RELAY`` with its COMMIT.

    Raises:
        Conflict, ForeignKeyViolation, IsolationViolation, InvalidData: as for the insert.
    """
    args = [*values, *_event_args(org_id, [event], 0)]
    sql = _with_event_sql(insert_sql, len(values))
    with translated():
        if " RETURNING " in insert_sql:
            return await connection.fetchrow(sql, *args)
        await connection.execute(sql, *args)
    return None
