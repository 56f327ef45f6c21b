"""Committed events reach the broker with the right topic, key, headers and payload."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.outbox import OUTBOX_CHANNEL, write_outbox
from tenancy.relay.claims import RelayOutbox
from tenancy.relay.kafka import EventConsumer, KafkaPublisher
from tenancy.relay.local_broker import free_port
from tenancy.relay.notifications import Listener
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.worker import Relay, open_relay

pytestmark = pytest.mark.usefixtures("broker")


def order_events(kafka_settings: KafkaSettings, relay_settings: RelaySettings) -> EventConsumer:
    """A consumer of payment-order status changes under the relay's topic prefix."""
    return EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
    )


async def test_committed_event_arrives_with_topic_key_headers_and_payload(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    receive,
) -> None:
    event = PaymentOrderStatusChanged(
        aggregate_id=str(uuid.uuid4()), old_status="pending", new_status="paid"
    )
    await emit(org_a, [event])

    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        [received] = await receive(consumer, {org_a}, 1)

    assert received.topic == f"{relay_settings.topic_prefix}payment_order"
    assert received.key == event.aggregate_id.encode()
    assert received.headers["event_id"] == str(event.event_id).encode()
    assert received.headers["event_type"] == b"PaymentOrderStatusChanged"
    assert received.headers["org_id"] == str(org_a).encode()
    assert received.event == event


async def test_rolled_back_event_is_never_published(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    db,
    org_a: uuid.UUID,
    emit,
    receive,
) -> None:
    order_id = str(uuid.uuid4())
    abandoned = PaymentOrderStatusChanged(aggregate_id=order_id, old_status="a", new_status="b")
    marker = PaymentOrderStatusChanged(aggregate_id=order_id, old_status="a", new_status="c")
    with pytest.raises(RuntimeError):
        async with db.session(org_a) as session:
            await write_outbox(session, [abandoned])
            raise RuntimeError("abandon the work")
    await emit(org_a, [marker])

    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        # Same aggregate, same partition, outbox order: had the abandoned event
        # been published, it would have arrived before the marker.
        [first] = await receive(consumer, {org_a}, 1)

    assert first.event.event_id == marker.event_id


async def test_notification_wakes_an_idle_relay_long_before_its_poll(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    receive,
) -> None:
    sleepy = relay_settings.model_copy(update={"poll_interval": 60.0})
    event = PaymentOrderStatusChanged(aggregate_id="o-1", old_status="a", new_status="b")

    async with (
        open_relay(settings, sleepy, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        assert relay.listener is not None
        await asyncio.wait_for(relay.listener.connected.wait(), timeout=10)
        await asyncio.sleep(0)  # let the relay take the wake-up its listener sent on connect
        await asyncio.wait_for(relay.idle.wait(), timeout=10)
        await emit(org_a, [event])
        async with asyncio.timeout(10):
            [received] = await receive(consumer, {org_a}, 1)

    assert received.event == event


async def test_relay_polls_when_it_cannot_listen(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    receive,
) -> None:
    event = PaymentOrderStatusChanged(aggregate_id="o-1", old_status="a", new_status="b")
    engine = create_engine(settings, url=relay_url(settings, relay_settings))
    publisher = KafkaPublisher(kafka_settings)
    deaf = Listener(f"postgresql://nobody@127.0.0.1:{free_port()}/none", OUTBOX_CHANNEL)
    relay = Relay(RelayOutbox(engine, relay_settings), publisher, send_timeout=3.0, listener=deaf)
    try:
        async with (
            relay.running(),
            order_events(kafka_settings, relay_settings) as consumer,
        ):
            await emit(org_a, [event])
            [received] = await receive(consumer, {org_a}, 1)
    finally:
        await publisher.close()
        await engine.dispose()

    assert received.event == event
    assert not deaf.connected.is_set()


async def test_running_relay_deletes_published_rows_past_retention(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine,
    org_a: uuid.UUID,
    emit,
    receive,
    until,
) -> None:
    keep_nothing = relay_settings.model_copy(
        update={"retention_seconds": 0.0, "retention_interval": 0.1}
    )
    event = PaymentOrderStatusChanged(aggregate_id="o-1", old_status="a", new_status="b")
    await emit(org_a, [event])

    async with (
        open_relay(settings, keep_nothing, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        await receive(consumer, {org_a}, 1)

        async def deleted() -> bool:
            async with admin_engine.connect() as connection:
                left = await connection.execute(
                    text("SELECT count(*) FROM outbox_events WHERE id = :id"),
                    {"id": event.event_id},
                )
                return left.scalar_one() == 0

        await until(deleted, within=10)
