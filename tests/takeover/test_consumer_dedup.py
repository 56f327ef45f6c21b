"""One organization's event never hides another's with the same id at the consumer.

Event ids are unique per organization. The consumer de-duplicates redeliveries by
``(organization, event id)`` taken from the record's headers, and refuses a
record whose payload names another event id than its header.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import KafkaSettings
from tenancy.relay.kafka import EventConsumer, KafkaPublisher
from tenancy.relay.publisher import EVENT_ID_HEADER, Message
from tests.events.test_kafka import change, message_of

pytestmark = pytest.mark.security


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(kafka_settings)
    yield publisher
    await publisher.close()


async def test_same_event_id_in_two_organizations_is_delivered_to_both(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings
) -> None:
    prefix, victim, attacker = f"x{uuid.uuid4().hex[:8]}.", uuid.uuid4(), uuid.uuid4()
    event = change()
    # The attacker's record comes first, with the victim's event id.
    await publisher.publish(
        [message_of(event, prefix, attacker), message_of(event, prefix, victim)]
    )

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            received = await consumer.take(2)

    assert [r.org_id for r in received] == [attacker, victim]
    assert consumer.duplicates == 0


async def test_record_whose_payload_disagrees_with_its_event_id_header_is_skipped(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings
) -> None:
    prefix, org = f"y{uuid.uuid4().hex[:8]}.", uuid.uuid4()
    honest = change()
    forged = message_of(change(), prefix, org)
    headers = tuple(
        (name, str(honest.event_id).encode() if name == EVENT_ID_HEADER else value)
        for name, value in forged.headers
    )
    mismatched = Message(topic=forged.topic, key=forged.key, value=forged.value, headers=headers)
    await publisher.publish([mismatched, message_of(honest, prefix, org)])

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            [received] = await consumer.take(1)

    assert received.event == honest
    assert consumer.invalid == 1
