"""A claim's plan: the partial index on pending rows, no table or bitmap scans, a hashed check.

Plan shapes are checked here because the wrong ones are fast on a test's small
table and disastrous on a production outbox (see ``tenancy.relay.claims``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.relay.claims import _CLAIM, _CLAIM_LOCK, CLAIM_LOCK_KEY
from tenancy.settings import RELAY_ROLE


@pytest.fixture(scope="module")
async def relay_engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, url=settings.url_for_role(RELAY_ROLE))
    yield engine
    await engine.dispose()


async def test_a_claim_plans_without_table_or_bitmap_scans(relay_engine: AsyncEngine) -> None:
    # Bitmap scans never mark dead index entries, so every claim would visit the
    # dead entries of every event since the last vacuum. Planned under the claim's
    # own settings, which its lock statement sets.
    params = {"limit": 500, "relay_id": "plan-check", "lease": 1.0}
    async with relay_engine.connect() as connection:
        await connection.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
        allowed = await connection.execute(
            text("SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan')")
        )
        assert allowed.one() == ("off", "off")
        explain = text(f"EXPLAIN (COSTS OFF) {_CLAIM.text}")
        plan = "\n".join((await connection.execute(explain, params)).scalars())
        await connection.rollback()

    assert "Index Scan using ix_outbox_events_pending" in plan
    assert "Bitmap" not in plan
    assert "Seq Scan" not in plan


async def test_a_claim_checks_blocked_aggregates_by_hash_not_by_nested_loop(
    relay_engine: AsyncEngine,
) -> None:
    # With stale statistics the planner believes both sides tiny; a nested-loop
    # anti join then costs candidates x leased rows per claim.
    params = {"limit": 500, "relay_id": "plan-check", "lease": 1.0}
    async with relay_engine.connect() as connection:
        await connection.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
        explain = text(f"EXPLAIN (COSTS OFF) {_CLAIM.text}")
        plan = "\n".join((await connection.execute(explain, params)).scalars())
        await connection.rollback()

    assert "hashed SubPlan" in plan
    assert "Anti Join" not in plan
