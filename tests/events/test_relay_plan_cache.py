"""A relay first planned on a small outbox stays linear when the outbox grows.

asyncpg prepares each statement once per connection, and after five runs
Postgres may keep a generic plan, made for the outbox as it was then. A relay
started on a nearly empty outbox kept such plans through a burst: each claim
read all of the organization's rows once per event of its batch. Here a relay's
``RelayOutbox`` runs its statements a few times on a small copy of the outbox
(``scratch_outbox``), the copy then grows, and ``auto_explain`` reports (as
notices to this connection) the plans its next statements really ran.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.relay.claims import ClaimedEvent, Failure, RelayOutbox
from tenancy.relay.settings import RelaySettings
from tests.events.scratch_outbox import add_rows, copy_outbox, plan_of, schema_name, visited

PUBLISHED = 20_000
PENDING = 2_000
BATCH = 100
# Runs of every statement before the outbox grows: past the five custom plans
# after which Postgres considers a generic one.
WARM_UP = 8

_EXPLAIN_TO_CLIENT = (
    "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
    " SET auto_explain.log_analyze = on; SET auto_explain.log_format = json;"
    " SET auto_explain.log_level = notice"
)


@dataclass
class Plans:
    """The plans auto_explain reported, as (query text, top plan node)."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, message: str) -> None:
        _, _, document = message.partition("plan:\n")
        if document:
            parsed = plan_of(document)
            self.seen.append((str(document), parsed))
            self.arrived.set()

    async def rows_visited(self, marker: str) -> float:
        """Rows visited by the last reported statement containing ``marker``."""
        async with asyncio.timeout(10):
            while True:
                found = [plan for query, plan in self.seen if marker in query]
                if found:
                    return visited(found[-1])
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class GrownOutbox:
    """A relay's outbox whose statements were planned small, and the plans it runs now."""

    outbox: RelayOutbox
    plans: Plans
    batch: list[ClaimedEvent]


@pytest.fixture
async def grown_outbox(
    settings: TenancySettings, admin_engine: AsyncEngine
) -> AsyncIterator[GrownOutbox]:
    """Warm a relay's statements on a copy of the outbox with a few rows, grow it, claim."""
    schema = schema_name()
    async with admin_engine.begin() as connection:
        await copy_outbox(connection, schema)
        await connection.execute(text(f"ANALYZE {schema}.outbox_events"))
    plans = Plans()
    # One connection, so that every statement reuses its prepared plan; the superuser,
    # who alone may LOAD auto_explain.
    engine = create_engine(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0}), url=settings.admin_url()
    )

    async def configure(connection: Any) -> None:
        await connection.execute(f"{_EXPLAIN_TO_CLIENT}; SET search_path = {schema}")
        connection.add_log_listener(lambda _, message: plans.add(message.message))

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.run_async(configure)

    relay_settings = RelaySettings(relay_id="plan-cache", batch_size=BATCH, lease_seconds=60)
    outbox = RelayOutbox(engine, relay_settings)
    try:
        for _ in range(WARM_UP):
            # An organization per round: the failed row blocks its aggregate.
            async with admin_engine.begin() as connection:
                await add_rows(connection, schema, uuid.uuid4(), "pending", 3)
            taken = await outbox.claim()
            failed = [outbox.plan_retry(Failure(taken[2], "refused"))]
            await outbox.settle(taken[:1], failed, taken[1:2])
        org_id = uuid.uuid4()
        async with admin_engine.begin() as connection:
            await add_rows(connection, schema, org_id, "published", PUBLISHED)
            await add_rows(connection, schema, org_id, "pending", PENDING)
        plans.seen.clear()
        batch = await outbox.claim()
        assert len(batch) == BATCH
        yield GrownOutbox(outbox, plans, batch)
    finally:
        await engine.dispose()
        async with admin_engine.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


async def test_a_claim_planned_on_a_small_outbox_reads_the_grown_backlog_once(
    grown_outbox: GrownOutbox,
) -> None:
    rows = await grown_outbox.plans.rows_visited("candidates AS")

    # The backlog once (to find the oldest claimable rows), the batch by key; a plan
    # kept from the small outbox read the organization's rows once per candidate.
    assert rows < PENDING + 20 * BATCH


async def test_marking_published_planned_on_a_small_outbox_visits_only_its_rows(
    grown_outbox: GrownOutbox,
) -> None:
    await grown_outbox.outbox.settle(grown_outbox.batch, [], [])

    rows = await grown_outbox.plans.rows_visited("SET status = 'published'")

    assert rows < 10 * BATCH


async def test_releasing_planned_on_a_small_outbox_visits_only_its_rows(
    grown_outbox: GrownOutbox,
) -> None:
    await grown_outbox.outbox.settle([], [], grown_outbox.batch)

    rows = await grown_outbox.plans.rows_visited("SET available_at = statement_timestamp()")

    assert rows < 10 * BATCH


async def test_failing_planned_on_a_small_outbox_visits_only_its_rows(
    grown_outbox: GrownOutbox,
) -> None:
    outbox = grown_outbox.outbox
    retries = [outbox.plan_retry(Failure(e, "refused")) for e in grown_outbox.batch]

    await outbox.settle([], retries, [])

    rows = await grown_outbox.plans.rows_visited("last_error = k.error")

    assert rows < 10 * BATCH
