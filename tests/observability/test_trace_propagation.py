"""One trace from the unit of work to the consumer: outbox row, Kafka header, relay batch."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories import PlatformDatabase
from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.events.outbox import write_outbox
from tenancy.observability.tracing import SPAN_NAME, context_from_traceparent
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import open_relay

pytestmark = pytest.mark.usefixtures("broker")


def _event() -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=str(uuid.uuid4()), old_status="a", new_status="b")


def _traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def _stored(admin_engine: AsyncEngine, event_id: uuid.UUID) -> str | None:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT trace_context FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
        stored: str | None = result.scalar_one()
    return stored


async def test_a_traced_unit_of_work_writes_its_traceparent_into_its_outbox_rows(
    traced: PlatformDatabase,
    org_a: uuid.UUID,
    admin_engine: AsyncEngine,
    exporter: InMemorySpanExporter,
) -> None:
    event = _event()
    async with traced.unit_of_work(org_a) as uow:
        uow.collect(event)
        await uow.commit()

    [span] = [s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]
    assert await _stored(admin_engine, event.event_id) == _traceparent(span)


async def test_an_untraced_unit_of_work_leaves_the_trace_context_empty(
    db: PlatformDatabase, org_a: uuid.UUID, admin_engine: AsyncEngine
) -> None:
    event = _event()
    async with db.unit_of_work(org_a) as uow:
        uow.collect(event)
        await uow.commit()

    assert await _stored(admin_engine, event.event_id) is None


async def test_the_consumer_continues_the_producers_trace_through_the_relay(
    traced: PlatformDatabase,
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    org_a: uuid.UUID,
    receive,
) -> None:
    event = _event()
    async with traced.unit_of_work(org_a) as uow:
        uow.collect(event)
        await uow.commit()
    [producer] = [s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]

    consumer = EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
    )
    async with open_relay(settings, relay_settings, kafka_settings) as relay:
        relay.tracer = provider.get_tracer("relay")
        async with relay.running(), consumer:
            [received] = await receive(consumer, {org_a}, 1)
    parent = context_from_traceparent(received.headers["traceparent"])
    with provider.get_tracer("consumer").start_as_current_span("consume", context=parent):
        pass

    [consume] = [s for s in exporter.get_finished_spans() if s.name == "consume"]
    batches = [s for s in exporter.get_finished_spans() if s.name == "tenancy.relay.batch"]
    assert received.headers["traceparent"] == _traceparent(producer).encode()
    assert consume.context.trace_id == producer.context.trace_id
    assert consume.parent is not None
    assert consume.parent.span_id == producer.context.span_id
    assert any(
        link.context.span_id == producer.context.span_id for b in batches for link in b.links
    )


async def test_a_malformed_trace_context_set_by_the_application_is_not_sent(
    db: PlatformDatabase,
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    receive,
) -> None:
    event = _event()
    async with db.session(org_a) as session:
        await session.execute(text("SET LOCAL tenancy.traceparent = 'not-a-trace'"))
        await write_outbox(session, [event])

    consumer = EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
    )
    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        consumer,
    ):
        [received] = await receive(consumer, {org_a}, 1)

    assert received.event == event
    assert "traceparent" not in received.headers
