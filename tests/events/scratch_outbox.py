"""A copy of ``outbox_events`` (its indexes included) in a schema of its own, and plan reading.

The relay's plans depend on the outbox's statistics and size, which a test cannot
set on the shared table; on a copy it can. Rows visited are counted from a plan
run with ANALYZE: every node's rows, plus the rows its filters dropped, times its
loops. That is the work a statement did, whatever the speed of the machine.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COPY = "CREATE TABLE {schema}.outbox_events (LIKE public.outbox_events INCLUDING ALL)"
_ROWS = """
    INSERT INTO {schema}.outbox_events (org_id, id, aggregate_type, aggregate_id, event_type,
                                        payload, status, published_at)
    SELECT :org_id, gen_random_uuid(), 'order', (n % 500)::text, 'order_updated',
           '{{"note": "x"}}'::jsonb, CAST(:status AS text),
           CASE WHEN CAST(:status AS text) = 'published' THEN statement_timestamp() END
    FROM generate_series(1, :count) AS n
"""


def schema_name() -> str:
    """Return a fresh schema name (identifiers cannot be bound; this one is ours)."""
    return f"outbox_{uuid.uuid4().hex[:10]}"


async def copy_outbox(connection: AsyncConnection, schema: str) -> None:
    """Create ``schema`` holding an empty copy of ``outbox_events`` with its indexes."""
    await connection.execute(text(f"CREATE SCHEMA {schema}"))
    await connection.execute(text(_COPY.format(schema=schema)))


async def add_rows(
    connection: AsyncConnection, schema: str, org_id: uuid.UUID, status: str, count: int
) -> None:
    """Insert ``count`` rows of ``status`` for ``org_id``, over 500 aggregates."""
    params = {"org_id": org_id, "status": status, "count": count}
    await connection.execute(text(_ROWS.format(schema=schema)), params)


def visited(node: dict[str, Any]) -> float:
    """Rows a plan node and its children produced or filtered out, over all their loops."""
    per_loop = (
        node["Actual Rows"]
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Join Filter", 0)
    )
    own = per_loop * node.get("Actual Loops", 1)
    return own + sum(visited(child) for child in node.get("Plans", ()))


def plan_of(document: str | list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """The top plan node of an EXPLAIN or auto_explain JSON document."""
    parsed = json.loads(document) if isinstance(document, str) else document
    top = parsed[0] if isinstance(parsed, list) else parsed
    plan: dict[str, Any] = top["Plan"]
    return plan
