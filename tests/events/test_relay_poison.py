"""A poison event is dead-lettered with its error and logged; the rest keep flowing."""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import TenancySettings
from tenancy.events import DomainEvent, PaymentOrderStatusChanged
from tenancy.kafka import EventConsumer
from tenancy.relay import open_relay
from tenancy.relay_settings import KafkaSettings, RelaySettings

pytestmark = pytest.mark.usefixtures("broker")


class Misfiled(DomainEvent):
    # Not a legal Kafka topic name: the broker would refuse it.
    aggregate_type: ClassVar[str] = "bad topic/name"


def change(order_id: str, new_status: str) -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=order_id, old_status="x", new_status=new_status)


async def outbox_state(admin_engine: AsyncEngine, event_id: uuid.UUID) -> tuple[str, str | None]:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT status, last_error FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
        status, error = result.one()
        return status, error


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        (change("o-poison", "x" * 1_100_000), "MessageSizeTooLarge"),
        (Misfiled(aggregate_id="o-poison"), "invalid topic name"),
    ],
    ids=["too-large-for-the-broker", "topic-the-broker-refuses"],
)
async def test_poison_event_is_dead_lettered_and_the_rest_are_delivered(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    emit,
    receive,
    poison: DomainEvent,
    error: str,
) -> None:
    before = change("o-1", "before")
    after_same_aggregate = change(poison.aggregate_id, "after")
    elsewhere = change("o-2", "elsewhere")
    await emit(org_a, [before, poison, after_same_aggregate, elsewhere])

    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        received = await receive(consumer, {org_a}, 3)

    assert {r.event.event_id for r in received} == {
        before.event_id,
        after_same_aggregate.event_id,
        elsewhere.event_id,
    }
    status, last_error = await outbox_state(admin_engine, poison.event_id)
    assert status == "dead"
    assert last_error is not None
    assert error in last_error


async def test_dead_letter_is_logged_with_event_id_and_org_id(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    log_watch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    poison = Misfiled(aggregate_id="o-1")
    await emit(org_a, [poison])

    with caplog.at_level(logging.WARNING, logger="tenancy"):
        async with open_relay(settings, relay_settings, kafka_settings) as relay, relay.running():
            await log_watch.wait_for(lambda r: str(poison.event_id) in r.getMessage())

    [record] = [r for r in caplog.records if str(poison.event_id) in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "dead-lettered" in record.getMessage()
    assert str(org_a) in record.getMessage()
    assert record.org_id == str(org_a)
    assert record.event_id == str(poison.event_id)
