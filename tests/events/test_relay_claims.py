"""The relay's statements: leased claims in aggregate order, retries, dead letters, retention.

Claims are global, so other tests' rows may come along; every assertion looks at
this test's organization only, and what a test claims it settles or releases.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.relay.claims import ClaimedEvent, Failure, RelayOutbox
from tenancy.relay.settings import RelaySettings
from tenancy.settings import RELAY_ROLE


@pytest.fixture(scope="module")
async def relay_engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, url=settings.url_for_role(RELAY_ROLE))
    yield engine
    await engine.dispose()


@pytest.fixture
async def outboxes(relay_engine: AsyncEngine) -> AsyncIterator[list[RelayOutbox]]:
    """Two relays' views of the outbox; whatever they still hold is released afterwards."""
    made = [
        RelayOutbox(
            relay_engine,
            RelaySettings(relay_id=f"relay-{n}", batch_size=10_000, max_attempts=3),
        )
        for n in (1, 2)
    ]
    yield made
    async with relay_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox_events SET available_at = now(), claimed_by = NULL"
                " WHERE status = 'pending' AND claimed_by IN ('relay-1', 'relay-2')"
            )
        )


def change(aggregate_id: str) -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=aggregate_id, old_status="a", new_status="b")


def ids_of(claimed: Sequence[ClaimedEvent], org_id: uuid.UUID) -> list[uuid.UUID]:
    return [e.id for e in claimed if e.org_id == org_id]


async def row(admin_engine: AsyncEngine, event_id: uuid.UUID) -> dict[str, object]:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT status, attempts, last_error, claimed_by,"
                " available_at > now() AS waiting FROM outbox_events WHERE id = :id"
            ),
            {"id": event_id},
        )
        return dict(result.one()._mapping)


async def test_claim_returns_an_aggregates_events_in_commit_order(
    outboxes: list[RelayOutbox], org_a: uuid.UUID, emit
) -> None:
    first, second, third = change("o-1"), change("o-1"), change("o-1")
    await emit(org_a, [first, second])
    await emit(org_a, [third])

    claimed = await outboxes[0].claim()

    assert ids_of(claimed, org_a) == [first.event_id, second.event_id, third.event_id]


async def test_claimed_rows_are_leased_away_from_other_relays(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    event = change("o-1")
    await emit(org_a, [event])

    assert ids_of(await outboxes[0].claim(), org_a) == [event.event_id]
    assert ids_of(await outboxes[1].claim(), org_a) == []
    assert (await row(admin_engine, event.event_id))["claimed_by"] == "relay-1"


async def test_rows_of_an_expired_lease_are_claimable_again(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    event = change("o-1")
    await emit(org_a, [event])
    await outboxes[0].claim()
    async with admin_engine.begin() as connection:
        # The relay holding the lease crashed and its lease ran out.
        await connection.execute(
            text("UPDATE outbox_events SET available_at = now() - interval '1 s' WHERE id = :id"),
            {"id": event.event_id},
        )

    assert ids_of(await outboxes[1].claim(), org_a) == [event.event_id]


async def test_later_event_waits_while_an_earlier_one_of_its_aggregate_is_leased(
    outboxes: list[RelayOutbox], org_a: uuid.UUID, emit
) -> None:
    earlier, other = change("o-1"), change("o-2")
    await emit(org_a, [earlier])
    await outboxes[0].claim()
    later = change("o-1")
    await emit(org_a, [later, other])

    assert ids_of(await outboxes[1].claim(), org_a) == [other.event_id]


async def test_published_rows_are_never_claimed_again(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    event = change("o-1")
    await emit(org_a, [event])
    claimed = [e for e in await outboxes[0].claim() if e.org_id == org_a]
    await outboxes[0].settle(claimed, [], [])

    assert (await row(admin_engine, event.event_id))["status"] == "published"
    assert ids_of(await outboxes[1].claim(), org_a) == []


async def test_released_rows_are_claimable_at_once(
    outboxes: list[RelayOutbox], org_a: uuid.UUID, emit
) -> None:
    event = change("o-1")
    await emit(org_a, [event])
    claimed = [e for e in await outboxes[0].claim() if e.org_id == org_a]
    await outboxes[0].settle([], [], claimed)

    assert ids_of(await outboxes[1].claim(), org_a) == [event.event_id]


async def test_failed_event_backs_off_and_holds_back_its_aggregate(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    failing, later, other = change("o-1"), change("o-1"), change("o-2")
    await emit(org_a, [failing, later, other])
    claimed = {e.id: e for e in await outboxes[0].claim() if e.org_id == org_a}
    retry = outboxes[0].plan_retry(Failure(claimed[failing.event_id], "RecordTooLarge"))
    await outboxes[0].settle([], [retry], [claimed[later.event_id], claimed[other.event_id]])

    state = await row(admin_engine, failing.event_id)
    assert (state["status"], state["attempts"], state["waiting"]) == ("pending", 1, True)
    assert state["last_error"] == "RecordTooLarge"
    assert ids_of(await outboxes[1].claim(), org_a) == [other.event_id]


async def test_event_is_dead_lettered_after_max_attempts(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    poison = change("o-1")
    await emit(org_a, [poison])
    async with admin_engine.begin() as connection:
        await connection.execute(
            text("UPDATE outbox_events SET attempts = 2 WHERE id = :id"), {"id": poison.event_id}
        )
    claimed = {e.id: e for e in await outboxes[0].claim() if e.org_id == org_a}
    retry = outboxes[0].plan_retry(Failure(claimed[poison.event_id], "RecordTooLarge"))
    await outboxes[0].settle([], [retry], [])

    state = await row(admin_engine, poison.event_id)
    assert (retry.dead, state["status"], state["attempts"]) == (True, "dead", 3)
    assert state["last_error"] == "RecordTooLarge"


async def test_dead_event_stops_its_aggregate_while_others_go_on(
    outboxes: list[RelayOutbox], admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    poison, later, other = change("o-1"), change("o-1"), change("o-2")
    await emit(org_a, [poison, later, other])
    async with admin_engine.begin() as connection:
        await connection.execute(
            text("UPDATE outbox_events SET attempts = 2 WHERE id = :id"), {"id": poison.event_id}
        )
    claimed = {e.id: e for e in await outboxes[0].claim() if e.org_id == org_a}
    retry = outboxes[0].plan_retry(Failure(claimed[poison.event_id], "RecordTooLarge"))
    await outboxes[0].settle([], [retry], [claimed[later.event_id], claimed[other.event_id]])

    assert ids_of(await outboxes[1].claim(), org_a) == [other.event_id]
    assert ids_of(await outboxes[1].claim(), org_a) == []  # later never comes, however often


def test_permanent_failure_uses_up_one_attempt_and_backs_off(outboxes: list[RelayOutbox]) -> None:
    event = ClaimedEvent(uuid.uuid4(), uuid.uuid4(), "order", "o-1", "E", "{}", attempts=0)

    retry = outboxes[0].plan_retry(Failure(event, "MessageSizeTooLarge"))

    assert (retry.dead, retry.attempts, retry.delay) == (False, 1, 1.0)


def test_transient_failure_uses_up_no_attempt_and_never_dead_letters(
    outboxes: list[RelayOutbox],
) -> None:
    # One attempt short of max_attempts: a counted failure would dead-letter it.
    event = ClaimedEvent(uuid.uuid4(), uuid.uuid4(), "order", "o-1", "E", "{}", attempts=2)

    retry = outboxes[0].plan_retry(Failure(event, "UnknownError", transient=True, delay=4.0))

    assert (retry.dead, retry.attempts, retry.delay) == (False, 2, 4.0)


def test_back_off_doubles_up_to_its_cap() -> None:
    settings = RelaySettings(backoff_initial=1.0, backoff_max=5.0)

    assert [settings.backoff(n) for n in (1, 2, 3, 4, 100)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_retention_deletes_only_published_rows_past_their_age(
    relay_engine: AsyncEngine, admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> None:
    old_published, new_published, old_pending, old_dead = (change(f"o-{n}") for n in range(4))
    await emit(org_a, [old_published, new_published, old_pending, old_dead])
    async with admin_engine.begin() as connection:
        for event, status, age in (
            (old_published, "published", 7200),
            (new_published, "published", 60),
            (old_pending, "pending", 7200),
            (old_dead, "dead", 7200),
        ):
            await connection.execute(
                text(
                    "UPDATE outbox_events SET status = :status,"
                    " published_at = now() - make_interval(secs => :age),"
                    " occurred_at = now() - make_interval(secs => :age) WHERE id = :id"
                ),
                {"status": status, "age": age, "id": event.event_id},
            )
    retention = RelayOutbox(relay_engine, RelaySettings(retention_seconds=3600, retention_batch=1))

    assert await retention.delete_published() >= 1
    async with admin_engine.connect() as connection:
        left = await connection.execute(
            text("SELECT id FROM outbox_events WHERE org_id = :org"), {"org": org_a}
        )
        assert set(left.scalars()) == {
            new_published.event_id,
            old_pending.event_id,
            old_dead.event_id,
        }
