"""Reading the outbox in unit-of-work tests."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tenancy import Database


async def outbox_event_types(db: Database, org_id: uuid.UUID, aggregate_id: uuid.UUID) -> list[str]:
    """Return the event types written to the outbox for one aggregate, in outbox order."""
    async with db.session(org_id) as session:
        rows = await session.execute(
            text("SELECT event_type FROM outbox_events WHERE aggregate_id = :id ORDER BY position"),
            {"id": str(aggregate_id)},
        )
        return list(rows.scalars())
