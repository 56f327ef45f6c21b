"""Broker down: writes still commit and events wait; broker back: all delivered, in order."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import open_relay


async def pending_of(admin_engine: AsyncEngine, org_id: uuid.UUID) -> list[tuple[str, int]]:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT status, attempts FROM outbox_events WHERE org_id = :org"),
            {"org": org_id},
        )
        return [(status, attempts) for status, attempts in result]


async def test_events_written_while_the_broker_is_down_are_delivered_in_order_when_it_returns(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    own_broker: LocalBroker,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
    log_watch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka_settings = KafkaSettings(
        bootstrap_servers=own_broker.bootstrap_servers,
        enable_idempotence=False,
        request_timeout_ms=1_000,
        send_timeout=1.5,
        connect_timeout=1.0,
        close_timeout=1.0,
    )
    orders = [str(uuid.uuid4()) for _ in range(3)]
    events = {order: changes(order, 4) for order in orders}
    first_round = [events[order][0] for order in orders]

    warm_up = changes(str(uuid.uuid4()), 1)
    await emit(org_a, warm_up)
    async with open_relay(settings, relay_settings, kafka_settings) as relay, relay.running():
        async with EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer:
            await receive(consumer, {org_a}, 1)  # the relay is connected and publishing
        await own_broker.stop()
        # One transaction per step, interleaving the orders, as real traffic would.
        for step in range(4):
            for order in orders:
                await emit(org_a, [events[order][step]])
        with caplog.at_level(logging.WARNING, logger="tenancy"):
            failure = await log_watch.wait_for(
                lambda r: any(str(e.event_id) in r.getMessage() for e in first_round)
            )
        assert failure.org_id == str(org_a)
        assert sorted(await pending_of(admin_engine, org_a)) == [("pending", 0)] * 12 + [
            ("published", 0)
        ]

        await own_broker.start()
        async with EventConsumer(
            kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
        ) as consumer:
            received = await receive(consumer, {org_a}, 12)

    for order in orders:
        arrived = [r.event.event_id for r in received if r.event.aggregate_id == order]
        assert arrived == [e.event_id for e in events[order]]
