"""Under load a batch's outcome is recorded in the transaction that claims the next batch.

Claims are global, so other tests' leftover rows may join a batch; assertions look
at this test's events, or at properties every batch must have.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.errors import RetryableError
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.claims import ClaimedEvent, Outcome, RelayOutbox
from tenancy.relay.kafka import EventConsumer, KafkaPublisher
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.worker import Relay

pytestmark = pytest.mark.usefixtures("broker")


@dataclass
class Claim:
    """One call of ``claim``: the outcome it was to record, and the batch it returned."""

    settling: Outcome | None
    batch: list[ClaimedEvent] = field(default_factory=list)


class RecordingOutbox(RelayOutbox):
    """The real outbox, remembering every claim and every outcome settled on its own."""

    def __init__(self, engine: AsyncEngine, settings: RelaySettings) -> None:
        super().__init__(engine, settings)
        self.claims: list[Claim] = []
        self.settled: list[Outcome] = []

    async def claim(self, settling: Outcome | None = None) -> list[ClaimedEvent]:
        call = Claim(settling)
        self.claims.append(call)
        call.batch = await super().claim(settling)
        return call.batch

    async def settle(self, published, retries, released) -> None:  # type: ignore[no-untyped-def]
        self.settled.append(Outcome(published, retries, released))
        await super().settle(published, retries, released)


class FailingOnceOutbox(RecordingOutbox):
    """Its first claim that carries an outcome fails (as a deadlock would) before any write."""

    failed: Outcome | None = None

    async def claim(self, settling: Outcome | None = None) -> list[ClaimedEvent]:
        if settling is not None and self.failed is None:
            self.failed = settling
            raise RetryableError("deadlock detected (simulated)")
        return await super().claim(settling)


@pytest.fixture
async def relay_engine(
    settings: TenancySettings, relay_settings: RelaySettings
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, url=relay_url(settings, relay_settings))
    yield engine
    await engine.dispose()


async def published_ids(admin_engine: AsyncEngine, org_id: uuid.UUID) -> set[uuid.UUID]:
    async with admin_engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id FROM outbox_events WHERE org_id = :org AND status = 'published'"),
            {"org": org_id},
        )
        return set(rows.scalars())


async def relay_all(
    outbox: RelayOutbox,
    kafka_settings: KafkaSettings,
    relay_settings: RelaySettings,
    org_id: uuid.UUID,
    events: list[DomainEvent],
    receive,
    until,
    admin_engine: AsyncEngine,
) -> list[uuid.UUID]:
    """Run a relay over ``outbox`` until ``events`` arrived and are marked published."""
    publisher = KafkaPublisher(kafka_settings)
    relay = Relay(outbox, publisher, send_timeout=3.0)
    wanted = {e.event_id for e in events}

    async def all_published() -> bool:
        return wanted <= await published_ids(admin_engine, org_id)

    try:
        async with (
            EventConsumer(
                kafka_settings,
                [PaymentOrderStatusChanged],
                topic_prefix=relay_settings.topic_prefix,
            ) as consumer,
            relay.running(),
        ):
            received = await receive(consumer, {org_id}, len(events))
            await until(all_published)
    finally:
        await publisher.close()
    return [r.event.event_id for r in received]


async def test_a_full_batch_is_recorded_by_the_claim_of_the_next(
    relay_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
    until,
) -> None:
    events = changes(str(uuid.uuid4()), 4) + changes(str(uuid.uuid4()), 3)
    await emit(org_a, events)
    outbox = RecordingOutbox(relay_engine, relay_settings.model_copy(update={"batch_size": 3}))

    arrived = await relay_all(
        outbox, kafka_settings, relay_settings, org_a, events, receive, until, admin_engine
    )

    assert sorted(arrived, key=str) == sorted((e.event_id for e in events), key=str)
    full = [n for n, call in enumerate(outbox.claims[:-1]) if len(call.batch) == 3]
    assert len(full) >= 2
    for n in full:
        settling = outbox.claims[n + 1].settling
        assert settling is not None
        assert {e.id for e in settling.published} == {e.id for e in outbox.claims[n].batch}
    # The outcome carried by a claim is never recorded a second time on its own.
    alone = {e.id for outcome in outbox.settled for e in outcome.published}
    carried = {e.id for c in outbox.claims if c.settling for e in c.settling.published}
    assert not alone & carried


async def test_an_aggregates_next_event_is_claimed_with_the_record_of_its_last(
    relay_engine: AsyncEngine,
    relay_settings: RelaySettings,
    org_a: uuid.UUID,
    emit,
    changes,
) -> None:
    first, second = changes("o-1", 2)
    outbox = RelayOutbox(relay_engine, relay_settings)
    await emit(org_a, [first])
    batch = await outbox.claim()
    mine = [e for e in batch if e.org_id == org_a]
    others = [e for e in batch if e.org_id != org_a]  # other tests' leftovers, handed back
    await emit(org_a, [second])

    # The claim sees its own transaction's record: o-1 is no longer held by a lease.
    taken = await outbox.claim(settling=Outcome(published=mine, released=others))

    assert [e.id for e in mine] == [first.event_id]
    assert [e.id for e in taken if e.org_id == org_a] == [second.event_id]
    await outbox.settle(
        [e for e in taken if e.org_id == org_a], [], [e for e in taken if e.org_id != org_a]
    )


async def test_a_failed_claim_records_the_outcome_it_carried_on_its_own(
    relay_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
    until,
) -> None:
    events = changes(str(uuid.uuid4()), 3) + changes(str(uuid.uuid4()), 3)
    await emit(org_a, events)
    outbox = FailingOnceOutbox(relay_engine, relay_settings.model_copy(update={"batch_size": 2}))

    arrived = await relay_all(
        outbox, kafka_settings, relay_settings, org_a, events, receive, until, admin_engine
    )

    assert sorted(arrived, key=str) == sorted((e.event_id for e in events), key=str)
    assert outbox.failed is not None
    assert outbox.failed in outbox.settled
