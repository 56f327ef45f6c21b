"""The outbox each phase of the relay benchmark starts from, and the backlog it is given.

Every phase starts from the same outbox: ``published`` rows already delivered
(what retention keeps in a production outbox, a week of them by default), then
VACUUM ANALYZE, as autovacuum leaves a drained outbox: the statistics say
nothing is pending. Then the phase writes its own events. So every turn of every
variant faces the same table, not one its position in the run made bigger.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import text

from bench.relay_events import make_event
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import write_outbox

# Delivered rows, as the relay leaves them; written in one statement, as the superuser.
_PUBLISHED = text(
    """
    INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id, event_type, payload,
                               status, published_at)
    SELECT :org_id, gen_random_uuid(), :aggregate_type, 'delivered-' || (n % :aggregates),
           :event_type, CAST(:payload AS jsonb), 'published', statement_timestamp()
    FROM generate_series(1, :count) AS n
    """
)


async def reset_outbox(
    settings: TenancySettings, org_id: uuid.UUID, published: int, aggregates: int
) -> None:
    """Empty the outbox, fill it with ``published`` delivered rows, VACUUM ANALYZE it."""
    event = make_event("delivered")
    params = {
        "org_id": org_id,
        "aggregate_type": event.aggregate_type,
        "aggregates": aggregates,
        "event_type": event.event_type(),
        "payload": event.payload_json(),
        "count": published,
    }
    admin = create_engine(settings, url=settings.admin_url())
    try:
        async with admin.begin() as connection:
            await connection.execute(text("TRUNCATE outbox_events"))
            await connection.execute(_PUBLISHED, params)
        async with admin.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE outbox_events"))
    finally:
        await admin.dispose()


async def write_backlog(db: Database, org_id: uuid.UUID, total: int, aggregates: int) -> float:
    """Commit ``total`` events, 100 per transaction, 8 at a time; return events/s."""
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    batches = [
        [make_event(ids[(start + i) % aggregates]) for i in range(min(100, total - start))]
        for start in range(0, total, 100)
    ]
    gate = asyncio.Semaphore(8)

    async def commit(events: list[DomainEvent]) -> None:
        async with gate, db.session(org_id) as session:
            await write_outbox(session, events)

    started = time.perf_counter()
    await asyncio.gather(*(commit(batch) for batch in batches))
    return total / (time.perf_counter() - started)
