"""The transactional outbox, writer side: events go in with the data, or not at all.

``write_outbox`` runs inside the unit of work's transaction, just before COMMIT.
The rows and the ``NOTIFY`` that wakes the relay share that transaction, so an
event exists (and the relay hears of it) if and only if the work committed;
Postgres delivers a notification only when its transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.outbox import OutboxEvent
from tenancy.events import DomainEvent
from tenancy.session import session_tenant

#: The channel ``write_outbox`` notifies and the relay listens on.
OUTBOX_CHANNEL = "tenancy_outbox"

OUTBOX_TABLE = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]

# Timestamps come from the database clock, not the application's: ``available_at``
# is compared with the database's now() when claiming, and a fast application
# clock would hide fresh events. clock_timestamp() advances row by row, so it
# also orders the rows of one statement.
_INSERT = insert(OUTBOX_TABLE).values(
    occurred_at=func.clock_timestamp(), available_at=func.clock_timestamp()
)
_NOTIFY = select(func.pg_notify(OUTBOX_CHANNEL, ""))


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
    rows = [
        {
            "org_id": org_id,
            "id": event.event_id,
            "aggregate_type": type(event).aggregate_type,
            "aggregate_id": event.aggregate_id,
            "event_type": event.event_type(),
            "payload": event.payload(),
            "position": position,
        }
        for position, event in enumerate(events)
    ]
    await session.execute(_INSERT, rows)
    await session.execute(_NOTIFY)
