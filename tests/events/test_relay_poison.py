"""A poison event is dead-lettered after its attempts, with its error, and logged; its
aggregate stops behind it while the other aggregates keep flowing."""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import Relay, open_relay

pytestmark = pytest.mark.usefixtures("broker")


class Misfiled(DomainEvent):
    # Not a legal Kafka topic name: the broker would refuse it.
    aggregate_type: ClassVar[str] = "bad topic/name"


def change(order_id: str, new_status: str) -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=order_id, old_status="x", new_status=new_status)


async def outbox_state(
    admin_engine: AsyncEngine, event_id: uuid.UUID
) -> tuple[str, str | None, int]:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT status, last_error, attempts FROM outbox_events WHERE id = :id"),
            {"id": event_id},
        )
        status, error, attempts = result.one()
        return status, error, attempts


async def claimed_again_after_a_dead_letter(relay: Relay, until) -> None:
    """Wait until the relay dead-lettered something and then ran one more claim."""

    async def dead() -> bool:
        return relay.stats.dead > 0

    await until(dead)
    claims = relay.stats.claims

    async def claimed_again() -> bool:
        return relay.stats.claims > claims

    await until(claimed_again)


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        (change("o-poison", "x" * 1_100_000), "MessageSizeTooLarge"),
        (Misfiled(aggregate_id="o-poison"), "invalid topic name"),
    ],
    ids=["too-large-for-the-broker", "topic-the-broker-refuses"],
)
async def test_poison_event_is_dead_lettered_after_its_attempts_and_other_aggregates_go_on(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    emit,
    receive,
    until,
    poison: DomainEvent,
    error: str,
) -> None:
    before = change("o-1", "before")
    elsewhere = change("o-2", "elsewhere")
    await emit(org_a, [before, poison, elsewhere])

    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer,
    ):
        received = await receive(consumer, {org_a}, 2)
        await claimed_again_after_a_dead_letter(relay, until)

    assert {r.event.event_id for r in received} == {before.event_id, elsewhere.event_id}
    status, last_error, attempts = await outbox_state(admin_engine, poison.event_id)
    assert (status, attempts) == ("dead", relay_settings.max_attempts)
    assert last_error is not None
    assert error in last_error


async def test_later_events_of_a_dead_events_aggregate_are_never_published(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    emit,
    until,
) -> None:
    poison = Misfiled(aggregate_id="o-1")
    later = Misfiled(aggregate_id="o-1")
    await emit(org_a, [poison])
    await emit(org_a, [later])

    async with open_relay(settings, relay_settings, kafka_settings) as relay, relay.running():
        await claimed_again_after_a_dead_letter(relay, until)
        late = Misfiled(aggregate_id="o-1")
        await emit(org_a, [late])  # committed after the dead letter: waits too
        await claimed_again_after_a_dead_letter(relay, until)

    assert (await outbox_state(admin_engine, poison.event_id))[0] == "dead"
    assert (await outbox_state(admin_engine, later.event_id))[::2] == ("pending", 0)
    assert (await outbox_state(admin_engine, late.event_id))[::2] == ("pending", 0)


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
            record = await log_watch.wait_for(
                lambda r: (
                    str(poison.event_id) in r.getMessage() and "dead-lettered" in r.getMessage()
                )
            )

    assert record.levelno == logging.ERROR
    assert str(org_a) in record.getMessage()
    assert record.org_id == str(org_a)
    assert record.event_id == str(poison.event_id)


async def test_blocked_aggregate_is_a_warning_naming_the_dead_event_and_the_aggregate(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    org_a: uuid.UUID,
    emit,
    log_watch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    poison = Misfiled(aggregate_id=str(uuid.uuid4()))
    await emit(org_a, [poison])

    with caplog.at_level(logging.WARNING, logger="tenancy"):
        async with open_relay(settings, relay_settings, kafka_settings) as relay, relay.running():
            record = await log_watch.wait_for(
                lambda r: "blocked" in r.getMessage() and str(poison.event_id) in r.getMessage()
            )

    assert record.levelno == logging.WARNING
    assert f"{Misfiled.aggregate_type} {poison.aggregate_id}" in record.getMessage()
    assert record.org_id == str(org_a)
