"""Committed events reach the broker with the right topic, key, headers and payload."""

from __future__ import annotations

import uuid

import pytest

from tenancy import TenancySettings
from tenancy.events import PaymentOrderStatusChanged
from tenancy.kafka import EventConsumer
from tenancy.outbox import write_outbox
from tenancy.relay import open_relay
from tenancy.relay_settings import KafkaSettings, RelaySettings

pytestmark = pytest.mark.usefixtures("broker")


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
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
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
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        # Same aggregate, same partition, outbox order: had the abandoned event
        # been published, it would have arrived before the marker.
        [first] = await receive(consumer, {org_a}, 1)

    assert first.event.event_id == marker.event_id
