"""Relay metrics: counters and outbox gauges against the real database and broker,
``/metrics`` and ``/healthz`` over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import ClassVar

import httpx
import pytest

from repositories import PlatformDatabase
from repositories.models import Organization
from tenancy import TenancySettings
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.admin import open_relay_admin
from tenancy.relay.local_broker import LocalBroker, free_port
from tenancy.relay.metrics_server import serving_metrics
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import Relay, open_relay, run_relay


class Misfiled(DomainEvent):
    # Not a legal Kafka topic name: the broker refuses it, every time.
    aggregate_type: ClassVar[str] = "bad topic/name"


@pytest.fixture
def metered(relay_settings: RelaySettings) -> RelaySettings:
    """Relay settings with metrics on (any free port) and quick gauge refreshes."""
    return relay_settings.model_copy(update={"metrics_port": 0, "metrics_interval": 0.1})


async def _org(db: PlatformDatabase) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name="metered"))
    return org_id


async def _emit(db: PlatformDatabase, org_id: uuid.UUID, events: Sequence[DomainEvent]) -> None:
    async with db.unit_of_work(org_id) as uow:
        for event in events:
            uow.collect(event)
        await uow.commit()


def _value(relay: Relay, name: str) -> float:
    assert relay.metrics is not None
    value = relay.metrics.registry.get_sample_value(name)
    return -1.0 if value is None else value


async def test_the_backlog_rises_while_the_broker_is_down_and_falls_to_zero_after(
    scratch_settings: TenancySettings,
    scratch_db: PlatformDatabase,
    metered: RelaySettings,
    own_broker: LocalBroker,
    changes,
    until,
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=own_broker.bootstrap_servers,
        enable_idempotence=False,
        request_timeout_ms=1_000,
        send_timeout=1.5,
        connect_timeout=1.0,
        close_timeout=1.0,
    )
    org_id = await _org(scratch_db)
    await own_broker.stop()
    async with open_relay(scratch_settings, metered, kafka) as relay, relay.running():
        await _emit(scratch_db, org_id, changes("order-1", 5))

        async def backlog_seen() -> bool:
            return _value(relay, "tenancy_outbox_backlog") == 5

        async def broker_away() -> bool:
            return _value(relay, "tenancy_relay_broker_reachable") == 0

        await until(backlog_seen)
        await until(broker_away)
        lag_while_down = _value(relay, "tenancy_outbox_lag_seconds")
        await own_broker.start()

        async def drained() -> bool:
            return (
                _value(relay, "tenancy_outbox_backlog") == 0
                and _value(relay, "tenancy_relay_published_total") == 5
            )

        await until(drained, within=60)

        assert lag_while_down > 0
        assert _value(relay, "tenancy_outbox_lag_seconds") == 0
        assert _value(relay, "tenancy_relay_broker_reachable") == 1
        assert _value(relay, "tenancy_relay_dead_lettered_total") == 0


async def test_a_poison_event_is_counted_dead_and_blocks_its_aggregate(
    scratch_settings: TenancySettings,
    scratch_db: PlatformDatabase,
    metered: RelaySettings,
    kafka_settings: KafkaSettings,
    until,
) -> None:
    org_id = await _org(scratch_db)
    poison = Misfiled(aggregate_id="o-poison")
    await _emit(scratch_db, org_id, [poison])

    async with open_relay(scratch_settings, metered, kafka_settings) as relay, relay.running():

        async def dead_counted() -> bool:
            return (
                _value(relay, "tenancy_relay_dead_lettered_total") == 1
                and _value(relay, "tenancy_outbox_dead") == 1
            )

        await until(dead_counted)
        blocked = _value(relay, "tenancy_outbox_blocked_aggregates")
        retries = _value(relay, "tenancy_relay_retries_total")

    async with open_relay_admin(scratch_settings, metered) as admin:
        status = await admin.status()
    assert blocked == 1
    assert retries == metered.max_attempts - 1
    assert [(d.id, d.attempts) for d in status.dead] == [(poison.event_id, metered.max_attempts)]


async def test_metrics_and_healthz_answer_over_http(
    scratch_settings: TenancySettings, metered: RelaySettings, kafka_settings: KafkaSettings, until
) -> None:
    async with open_relay(scratch_settings, metered, kafka_settings) as relay:
        assert relay.metrics is not None
        async with (
            serving_metrics(relay.metrics, relay.healthy, host="127.0.0.1", port=0) as endpoint,
            httpx.AsyncClient(base_url=endpoint.url) as http,
        ):
            before = await http.get("/healthz")
            async with relay.running():

                async def healthy() -> bool:
                    return (await http.get("/healthz")).status_code == 200

                await until(healthy)
                metrics = await http.get("/metrics")
                unknown = await http.get("/nothing-here")
            after = await http.get("/healthz")

    assert before.status_code == 503
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "tenancy_outbox_backlog 0.0" in metrics.text
    assert "tenancy_relay_published_total" in metrics.text
    assert unknown.status_code == 404
    assert after.status_code == 503
    assert after.json() == {"status": "unavailable", "database": True}


async def test_the_relay_command_serves_metrics_on_the_configured_port(
    scratch_settings: TenancySettings, relay_settings: RelaySettings, kafka_settings: KafkaSettings
) -> None:
    port = free_port()
    configured = relay_settings.model_copy(update={"metrics_port": port})
    task = asyncio.create_task(run_relay(scratch_settings, configured, kafka_settings))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.ConnectError:
                        pass
                    await asyncio.sleep(0.1)
            assert "tenancy_relay_broker_reachable" in (await http.get("/metrics")).text
    finally:
        task.cancel()
        await asyncio.wait([task])
