"""The events step of ``tenancy demo``: relay the committed outbox, read it back from the broker.

The relay runs in-process as the relay role; a consumer reads the demo's topics
(a prefix of this run's own, so a shared broker's older messages never count).
The step ends when every event the tenants committed, of the types shown, has
arrived, or fails after ``within`` seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from repositories.database import PlatformDatabase
from repositories.demo.output import Console
from repositories.demo.story import StoryOutcome
from repositories.domain_events import (
    MemberAdded,
    OrganizationCreated,
    PaymentOrderCreated,
    PaymentOrderStatusChanged,
    PriceChanged,
)
from repositories.lifecycle import AggregateCreated, lifecycle_event
from repositories.models import Agent, Customer
from tenancy.events.domain_event import DomainEvent
from tenancy.relay.kafka import EventConsumer, ReceivedEvent
from tenancy.relay.publisher import BrokerUnavailable
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import RelayStats, open_relay
from tenancy.settings import RELAY_ROLE, TenancySettings


def shown_event_types() -> tuple[type[DomainEvent], ...]:
    """Return the event types the demo reads back (the generic created events included)."""
    return (
        OrganizationCreated,
        MemberAdded,
        lifecycle_event(AggregateCreated, Agent.__name__, Agent.__tablename__),
        lifecycle_event(AggregateCreated, Customer.__name__, Customer.__tablename__),
        PriceChanged,
        PaymentOrderCreated,
        PaymentOrderStatusChanged,
    )


@dataclass(frozen=True)
class EventsOutcome:
    """What the events step saw: every event read, and the relay's counters."""

    expected: int
    received: list[ReceivedEvent]
    stats: RelayStats
    seconds: float


async def committed_events(db: PlatformDatabase, outcome: StoryOutcome) -> dict[uuid.UUID, str]:
    """Return every outbox event's id and type, read by each tenant as the app role."""
    events: dict[uuid.UUID, str] = {}
    for tenant in outcome.tenants:
        async with db.unit_of_work(tenant.org_id) as uow:
            driver = await uow.driver()
            rows = await driver.fetch("SELECT id, event_type FROM outbox_events")
        events.update((row["id"], row["event_type"]) for row in rows)
    return events


async def relay_events(
    db: PlatformDatabase,
    settings: TenancySettings,
    kafka: KafkaSettings,
    console: Console,
    outcome: StoryOutcome,
    *,
    within: float,
) -> EventsOutcome:
    """Run a relay and a consumer until every committed event of the shown types arrived.

    Raises:
        BrokerUnavailable: the broker cannot be reached.
        TimeoutError: some events did not arrive within ``within`` seconds.
    """
    console.section("Events: outbox -> relay -> broker -> consumer")
    types = shown_event_types()
    committed = await committed_events(db, outcome)
    names = {event_type.event_type() for event_type in types}
    missing = {event_id for event_id, name in committed.items() if name in names}
    expected = len(missing)
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    relay_settings = RelaySettings(
        # Explicit, so that a TENANCY_RELAY_DATABASE_URL meant for another database is not used.
        database_url=settings.url_for_role(RELAY_ROLE).render_as_string(hide_password=False),
        topic_prefix=prefix,
        poll_interval=0.5,
    )
    org_names = {tenant.org_id: tenant.plan.name for tenant in outcome.tenants}
    console.line(
        f"the steps above committed {len(committed)} events to the outbox, with their rows"
    )
    console.line(f"relay (as {RELAY_ROLE}) -> topics {prefix}<aggregate> -> consumer")
    hidden = sorted(set(committed.values()) - names)
    console.line(f"the consumer shows {expected} of them (not shown: {', '.join(hidden)}):")
    loop = asyncio.get_running_loop()
    started = loop.time()
    received: list[ReceivedEvent] = []
    try:
        async with (
            EventConsumer(kafka, types, topic_prefix=prefix) as consumer,
            open_relay(settings, relay_settings, kafka) as relay,
            relay.running(),
        ):
            try:
                async with asyncio.timeout(within):
                    while missing:
                        # take() de-duplicates by event id: at-least-once delivery shows once.
                        for item in await consumer.take(1):
                            received.append(item)
                            missing.discard(item.event.event_id)
                            console.event(item, org_names)
            except TimeoutError as exc:
                raise TimeoutError(
                    f"{len(missing)} of {expected} events did not arrive within {within:.0f}s"
                ) from exc
    except BrokerUnavailable as exc:
        raise BrokerUnavailable(
            f"no Kafka broker at {kafka.bootstrap_servers} ({exc}); "
            "unset TENANCY_KAFKA_BOOTSTRAP_SERVERS to use the bundled one"
        ) from exc
    seconds = loop.time() - started
    console.line(
        f"all {expected} arrived in {seconds:.1f}s; the relay published "
        f"{relay.stats.published} of {len(committed)} in {relay.stats.batches} batch(es)"
    )
    return EventsOutcome(expected, received, relay.stats, seconds)
