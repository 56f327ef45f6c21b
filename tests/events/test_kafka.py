"""The Kafka publisher bounds every wait and rebuilds itself; the consumer de-duplicates."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from repositories.domain_events import PaymentOrderCreated, PaymentOrderStatusChanged
from tenancy import ConfigurationError
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.claims import ClaimedEvent
from tenancy.relay.kafka import EventConsumer, KafkaPublisher
from tenancy.relay.local_broker import LocalBroker, free_port
from tenancy.relay.publisher import BrokerUnavailable, Message
from tenancy.relay.settings import KafkaSettings
from tenancy.relay.worker import to_message


def message_of(event: DomainEvent, prefix: str, org_id: uuid.UUID) -> Message:
    claimed = ClaimedEvent(
        org_id=org_id,
        id=event.event_id,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        event_type=event.event_type(),
        payload=json.dumps(event.payload()),
        attempts=0,
    )
    return to_message(claimed, prefix)


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(kafka_settings)
    yield publisher
    await publisher.close()


def change(order_id: str = "o-1") -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=order_id, old_status="a", new_status="b")


async def test_start_against_an_unreachable_broker_fails_within_the_connect_timeout() -> None:
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout=1.0)
    publisher = KafkaPublisher(settings)
    started = time.monotonic()

    with pytest.raises(BrokerUnavailable):
        await publisher.start()

    assert time.monotonic() - started < 3.0


async def test_publish_to_a_vanished_broker_returns_in_bounded_time_and_rebuilds() -> None:
    async with LocalBroker() as broker:
        settings = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            enable_idempotence=False,
            request_timeout_ms=1_000,
            send_timeout=1.5,
            close_timeout=1.0,
        )
        publisher = KafkaPublisher(settings)
        await publisher.start()
        await broker.stop()
        started = time.monotonic()

        results = await publisher.publish([message_of(change(), "gone.", uuid.uuid4())] * 3)

        elapsed = time.monotonic() - started
        await publisher.close()
    assert all(r is not None and r.retriable for r in results)
    assert elapsed < settings.send_timeout + settings.close_timeout + 1.0
    assert publisher.rebuilds == 1


@pytest.mark.usefixtures("broker")
async def test_oversized_message_fails_alone_and_permanently(publisher: KafkaPublisher) -> None:
    org = uuid.uuid4()
    fine = message_of(change(), "size.", org)
    too_large = Message(topic=fine.topic, key=b"o-2", value=b"x" * 2_000_000)

    first, second, third = await publisher.publish([fine, too_large, fine])

    assert (first, third) == (None, None)
    assert second is not None
    assert not second.retriable
    assert publisher.rebuilds == 0


def test_missing_compression_library_is_a_configuration_error() -> None:
    pytest.importorskip("aiokafka")
    from aiokafka.codec import has_zstd

    if has_zstd():
        pytest.skip("zstd is installed here")
    with pytest.raises(ConfigurationError):
        KafkaPublisher(KafkaSettings(compression_type="zstd"))


async def test_consumer_yields_a_redelivered_event_once(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings
) -> None:
    prefix, org = f"d{uuid.uuid4().hex[:8]}.", uuid.uuid4()
    event, later = change(), change()
    again = message_of(event, prefix, org)
    await publisher.publish([again, again, message_of(later, prefix, org)])

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            received = await consumer.take(2)

    assert [r.event for r in received] == [event, later]
    assert consumer.duplicates == 1


async def test_received_event_carries_the_time_the_relay_sent_it(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings
) -> None:
    prefix, org = f"s{uuid.uuid4().hex[:8]}.", uuid.uuid4()
    before = int(time.time() * 1000)
    await publisher.publish([message_of(change(), prefix, org)])
    after = int(time.time() * 1000)

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            [received] = await consumer.take(1)

    assert received.timestamp_ms is not None
    assert before <= received.timestamp_ms <= after


async def test_consumer_skips_event_types_it_did_not_ask_for(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings
) -> None:
    prefix, org = f"s{uuid.uuid4().hex[:8]}.", uuid.uuid4()
    unwanted = PaymentOrderCreated(
        aggregate_id="o-1",
        customer_id=uuid.uuid4(),
        amount=100,
        currency="EUR",
        payment_link_id=None,
        agent_id=None,
    )
    wanted = change()
    await publisher.publish([message_of(unwanted, prefix, org), message_of(wanted, prefix, org)])

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            [received] = await consumer.take(1)

    assert received.event == wanted
    assert received.org_id == org


async def test_consumer_skips_an_unreadable_record_loudly(
    publisher: KafkaPublisher, kafka_settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    prefix, org = f"u{uuid.uuid4().hex[:8]}.", uuid.uuid4()
    wanted = change()
    readable = message_of(wanted, prefix, org)
    garbled = Message(
        topic=readable.topic, key=readable.key, value=b"{not json", headers=readable.headers
    )
    await publisher.publish([garbled, readable])

    async with EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=prefix
    ) as consumer:
        async with asyncio.timeout(20):
            [received] = await consumer.take(1)

    assert received.event == wanted
    assert consumer.invalid == 1
    assert any("unreadable" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
