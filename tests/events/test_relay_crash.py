"""A relay stopped mid-batch, however abruptly, loses nothing: a restart delivers every
event, duplicates (at least once) are dropped by the consumer, per-aggregate order holds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.claims import RelayOutbox
from tenancy.relay.kafka import EventConsumer, KafkaPublisher
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.publisher import Message, PublishError
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.worker import Relay, open_relay

RELAY_PROCESS = (
    "import asyncio\n"
    "from tenancy import TenancySettings\n"
    "from tenancy.relay.worker import run_relay\n"
    "asyncio.run(run_relay(TenancySettings()))\n"
)


class DyingPublisher(KafkaPublisher):
    """The real Kafka publisher, whose relay "dies" right after a round was acknowledged.

    After round ``rounds`` the broker has the messages but the relay never learns
    it (the call hangs until the relay is cancelled): the worst moment to crash.
    """

    def __init__(self, settings: KafkaSettings, rounds: int) -> None:
        super().__init__(settings)
        self.wanted = rounds
        self.done = 0
        self.reached = asyncio.Event()

    async def publish(self, messages: Sequence[Message]) -> list[PublishError | None]:
        results = await super().publish(messages)
        self.done += 1
        if self.done == self.wanted:
            self.reached.set()
            await asyncio.Event().wait()  # until cancelled
        return results


async def interleaved(emit, org_id: uuid.UUID, orders: int, per_order: int, changes):
    """Commit ``per_order`` changes of ``orders`` orders, a transaction per step."""
    events = {str(uuid.uuid4()): [] for _ in range(orders)}
    for order in events:
        events[order] = changes(order, per_order)
    for step in range(per_order):
        await emit(org_id, [events[order][step] for order in events])
    return events


def assert_in_order(received, events: dict[str, list[DomainEvent]]) -> None:
    for order, expected in events.items():
        arrived = [r.event.event_id for r in received if r.event.aggregate_id == order]
        assert arrived == [e.event_id for e in expected]


async def count(admin_engine: AsyncEngine, sql: str, **params: object) -> int:
    async with admin_engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


@pytest.fixture
async def relay_engine(
    settings: TenancySettings, relay_settings: RelaySettings
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, url=relay_url(settings, relay_settings))
    yield engine
    await engine.dispose()


async def test_relay_cancelled_after_an_unrecorded_ack_redelivers_and_consumer_deduplicates(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    relay_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    broker: LocalBroker,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
) -> None:
    events = await interleaved(emit, org_a, orders=10, per_order=8, changes=changes)
    batch_settings = relay_settings.model_copy(update={"batch_size": 2_000})
    publisher = DyingPublisher(kafka_settings, rounds=3)
    relay = Relay(
        RelayOutbox(relay_engine, batch_settings), publisher, send_timeout=3.0, listener=None
    )
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(publisher.reached.wait(), timeout=30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await publisher.close()

    of_org = "SELECT count(*) FROM outbox_events WHERE org_id = :org"
    assert await count(admin_engine, of_org + " AND claimed_by IS NOT NULL", org=org_a) == 0
    # Rounds 1 and 2 were recorded; round 3 reached the broker but not the outbox.
    assert await count(admin_engine, of_org + " AND status = 'published'", org=org_a) == 20
    assert await count(admin_engine, of_org + " AND status = 'pending'", org=org_a) > 0

    async with (
        open_relay(settings, relay_settings, kafka_settings) as restarted,
        restarted.running(),
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        received = await receive(consumer, {org_a}, 80)
    assert_in_order(received, events)
    assert consumer.duplicates >= 10  # round 3, sent twice, yielded once


async def start_relay_process(
    settings: TenancySettings, relay_settings: RelaySettings, broker: LocalBroker, log: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TENANCY_ADMIN_DATABASE_URL": settings.admin_url().render_as_string(hide_password=False),
        "TENANCY_RELAY_RELAY_ID": relay_settings.relay_id,
        "TENANCY_RELAY_TOPIC_PREFIX": relay_settings.topic_prefix,
        "TENANCY_RELAY_BATCH_SIZE": "100",
        "TENANCY_RELAY_LEASE_SECONDS": "2",
        "TENANCY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TENANCY_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "TENANCY_KAFKA_SEND_TIMEOUT": "1.5",
    }
    with log.open("wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", RELAY_PROCESS, env=env, stderr=stderr
        )


async def mid_batch(
    admin_engine: AsyncEngine,
    org_id: uuid.UUID,
    process: asyncio.subprocess.Process,
    relay_id: str,
    log: Path,
    until,
) -> None:
    """Wait until the relay process has published some events and holds a lease on others."""

    async def publishing() -> bool:
        if process.returncode is not None:
            raise AssertionError(log.read_text())  # noqa: ASYNC240 (failure path only)
        of_org = "SELECT count(*) FROM outbox_events WHERE org_id = :org"
        published = await count(admin_engine, of_org + " AND status = 'published'", org=org_id)
        leased = await count(
            admin_engine, of_org + " AND claimed_by = :relay", org=org_id, relay=relay_id
        )
        return published > 0 and leased > 0

    await until(publishing)


async def test_killed_relay_process_loses_nothing(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    broker: LocalBroker,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
    until,
    tmp_path: Path,
) -> None:
    # Few aggregates with long histories: many rounds per batch, a wide window to kill in.
    events = await interleaved(emit, org_a, orders=3, per_order=300, changes=changes)
    log = tmp_path / "relay.log"
    process = await start_relay_process(settings, relay_settings, broker, log)
    try:
        await mid_batch(admin_engine, org_a, process, relay_settings.relay_id, log, until)
    finally:
        process.kill()
        await process.wait()

    # Its leases run out after 2 s; then the restarted relay takes the rows over.
    async with (
        open_relay(settings, relay_settings, kafka_settings) as restarted,
        restarted.running(),
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        received = await receive(consumer, {org_a}, 900)
    assert_in_order(received, events)


async def test_sigterm_mid_batch_exits_cleanly_and_leaves_no_lease_behind(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    admin_engine: AsyncEngine,
    broker: LocalBroker,
    org_a: uuid.UUID,
    emit,
    changes,
    until,
    tmp_path: Path,
) -> None:
    await interleaved(emit, org_a, orders=3, per_order=300, changes=changes)
    log = tmp_path / "relay.log"
    process = await start_relay_process(settings, relay_settings, broker, log)
    try:
        await mid_batch(admin_engine, org_a, process, relay_settings.relay_id, log, until)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    leased = "SELECT count(*) FROM outbox_events WHERE claimed_by = :relay AND status = 'pending'"
    assert await count(admin_engine, leased, relay=relay_settings.relay_id) == 0
