"""Operator commands: ``tenancy relay status``, ``requeue EVENT_ID`` and ``discard EVENT_ID``.

A dead event is set up in the outbox directly (as if the broker had refused it
``max_attempts`` times); the relay and the broker are real. Status is global, so
assertions look at this test's rows only.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.cli.command import EXIT_ERROR, EXIT_OK, build_parser
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import Relay, open_relay
from tests.cli.databases import run_cli

pytestmark = pytest.mark.usefixtures("broker")

ERROR = "RecordTooLargeError: [Error 18] the record is larger than the broker accepts"


def change(order_id: str, new_status: str) -> PaymentOrderStatusChanged:
    return PaymentOrderStatusChanged(aggregate_id=order_id, old_status="x", new_status=new_status)


async def make_dead(admin_engine: AsyncEngine, event_id: uuid.UUID) -> None:
    async with admin_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox_events SET status = 'dead', attempts = 3, last_error = :error"
                " WHERE id = :id"
            ),
            {"id": event_id, "error": ERROR},
        )


async def status_of(admin_engine: AsyncEngine, event_id: uuid.UUID) -> str:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT status FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
        return str(result.scalar_one())


async def one_more_claim(relay: Relay, until) -> None:
    claims = relay.stats.claims

    async def claimed() -> bool:
        return relay.stats.claims > claims

    await until(claimed)


def url_of(settings: TenancySettings) -> str:
    return settings.admin_url().render_as_string(hide_password=False)


@pytest.fixture
async def blocked_order(
    admin_engine: AsyncEngine, org_a: uuid.UUID, emit
) -> list[PaymentOrderStatusChanged]:
    """An order whose first event is dead and whose two later events wait behind it."""
    order = str(uuid.uuid4())
    events = [change(order, "authorized"), change(order, "paid"), change(order, "refunded")]
    for event in events:
        await emit(org_a, [event])
    await make_dead(admin_engine, events[0].event_id)
    return events


def order_events(kafka_settings: KafkaSettings, relay_settings: RelaySettings) -> EventConsumer:
    return EventConsumer(
        kafka_settings, [PaymentOrderStatusChanged], topic_prefix=relay_settings.topic_prefix
    )


async def test_status_prints_backlog_dead_events_and_blocked_aggregates(
    settings: TenancySettings,
    org_a: uuid.UUID,
    blocked_order: list[PaymentOrderStatusChanged],
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead = blocked_order[0]

    assert await run_cli("relay", "status", "--database-url", url_of(settings)) == EXIT_OK

    out = capsys.readouterr().out
    assert "backlog: " in out
    assert "oldest " in out
    [dead_row] = [line for line in out.splitlines() if line.strip().startswith(str(dead.event_id))]
    assert str(org_a) in dead_row
    assert f"payment_order/{dead.aggregate_id}" in dead_row
    assert "PaymentOrderStatusChanged" in dead_row
    assert " 3 " in dead_row
    assert "RecordTooLargeError" in dead_row
    [blocked_row] = [line for line in out.splitlines() if line.strip().startswith(str(org_a))]
    assert f"payment_order/{dead.aggregate_id}" in blocked_row
    assert str(dead.event_id) in blocked_row
    assert blocked_row.split()[-1] == "2"  # later events waiting


async def test_requeue_publishes_the_dead_event_then_its_aggregate_in_order(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    blocked_order: list[PaymentOrderStatusChanged],
    receive,
    until,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead = blocked_order[0]
    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        await one_more_claim(relay, until)
        assert await status_of(admin_engine, blocked_order[1].event_id) == "pending"

        exit_code = await run_cli(
            "relay", "requeue", str(dead.event_id), "--database-url", url_of(settings)
        )
        received = await receive(consumer, {org_a}, 3)

    assert exit_code == EXIT_OK
    assert f"requeued event {dead.event_id}" in capsys.readouterr().out
    assert [r.event.event_id for r in received] == [e.event_id for e in blocked_order]


async def test_discard_never_publishes_the_dead_event_and_its_aggregate_resumes(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    blocked_order: list[PaymentOrderStatusChanged],
    receive,
    until,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead = blocked_order[0]
    async with (
        open_relay(settings, relay_settings, kafka_settings) as relay,
        relay.running(),
        order_events(kafka_settings, relay_settings) as consumer,
    ):
        await one_more_claim(relay, until)
        exit_code = await run_cli(
            "relay", "discard", str(dead.event_id), "--database-url", url_of(settings)
        )
        received = await receive(consumer, {org_a}, 2)

    assert exit_code == EXIT_OK
    assert f"discarded event {dead.event_id}" in capsys.readouterr().out
    assert [r.event.event_id for r in received] == [e.event_id for e in blocked_order[1:]]
    assert await status_of(admin_engine, dead.event_id) == "discarded"


async def test_requeue_of_an_unknown_event_is_a_one_line_error(
    settings: TenancySettings, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = uuid.uuid4()

    exit_code = await run_cli("relay", "requeue", str(unknown), "--database-url", url_of(settings))

    err = capsys.readouterr().err
    assert exit_code == EXIT_ERROR
    assert err.startswith(f"tenancy: error: no outbox event {unknown}")
    assert len(err.splitlines()) == 1


async def test_discard_of_an_event_that_is_not_dead_is_a_one_line_error(
    settings: TenancySettings, org_a: uuid.UUID, emit, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = change(str(uuid.uuid4()), "paid")
    await emit(org_a, [pending])

    exit_code = await run_cli(
        "relay", "discard", str(pending.event_id), "--database-url", url_of(settings)
    )

    err = capsys.readouterr().err
    assert exit_code == EXIT_ERROR
    assert err.startswith(f"tenancy: error: outbox event {pending.event_id} is pending, not dead")
    assert len(err.splitlines()) == 1


def test_relay_without_an_action_still_runs_the_relay() -> None:
    args = build_parser().parse_args(["relay", "--database-url", "postgresql://h/db"])

    assert args.handler.__name__ == "_relay"
    assert args.database_url == "postgresql://h/db"


def test_database_url_may_come_before_or_after_the_action() -> None:
    before = build_parser().parse_args(["relay", "--database-url", "postgresql://h/a", "status"])
    after = build_parser().parse_args(["relay", "status", "--database-url", "postgresql://h/b"])

    assert (before.database_url, after.database_url) == ("postgresql://h/a", "postgresql://h/b")
