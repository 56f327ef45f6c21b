"""Several relays at once: every event is delivered, and each aggregate's order holds."""

from __future__ import annotations

import uuid

import pytest

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import open_relay

pytestmark = pytest.mark.usefixtures("broker")


async def test_two_relays_deliver_everything_in_order_per_aggregate(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
    emit,
    changes,
    receive,
) -> None:
    events: dict[str, list[DomainEvent]] = {}
    for org in (org_a, org_b):
        orders = [str(uuid.uuid4()) for _ in range(20)]
        for order in orders:
            events[order] = changes(order, 10)
        for step in range(10):
            await emit(org, [events[order][step] for order in orders])
    # Small batches, so that both relays have claims in flight at the same time.
    first = relay_settings.model_copy(update={"relay_id": "first", "batch_size": 25})
    second = relay_settings.model_copy(update={"relay_id": "second", "batch_size": 25})

    async with (
        open_relay(settings, first, kafka_settings) as relay_1,
        open_relay(settings, second, kafka_settings) as relay_2,
        relay_1.running(),
        relay_2.running(),
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        received = await receive(consumer, {org_a, org_b}, 400)

    assert relay_1.stats.published > 0
    assert relay_2.stats.published > 0
    for order, expected in events.items():
        arrived = [r.event.event_id for r in received if r.event.aggregate_id == order]
        assert arrived == [e.event_id for e in expected]
