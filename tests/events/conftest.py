"""Event fixtures: a real Kafka-API broker for the session, relays and consumers per test."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import write_outbox
from tenancy.relay.kafka import EventConsumer, ReceivedEvent
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings

Emit = Callable[[uuid.UUID, Sequence[DomainEvent]], Awaitable[None]]


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[LocalBroker]:
    """The bundled Tansu broker on a free loopback port, for the whole session."""
    async with LocalBroker() as running:
        yield running


def kafka_settings_for(broker: LocalBroker) -> KafkaSettings:
    """Producer settings for the test broker: no idempotence, short timeouts."""
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        enable_idempotence=False,
        request_timeout_ms=2_000,
        send_timeout=3.0,
        connect_timeout=2.0,
        close_timeout=2.0,
    )


@pytest.fixture
async def own_broker() -> AsyncIterator[LocalBroker]:
    """A broker of this test alone, so that it can be stopped and started again."""
    async with LocalBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_settings(broker: LocalBroker) -> KafkaSettings:
    """Settings pointing at the session broker."""
    return kafka_settings_for(broker)


@pytest.fixture
def relay_settings() -> RelaySettings:
    """Relay settings with a topic prefix of this test's own, and quick retries."""
    return RelaySettings(
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        batch_size=200,
        poll_interval=0.5,
        lease_seconds=8.0,
        backoff_initial=0.2,
        backoff_max=1.0,
        max_attempts=3,
    )


@pytest.fixture(scope="session")
async def admin_engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    """Superuser engine for inspecting outbox rows across tenants (never for isolation)."""
    engine = create_engine(settings, url=settings.admin_url())
    yield engine
    await engine.dispose()


@pytest.fixture
def emit(db: Database) -> Emit:
    """Commit ``events`` to the outbox of ``org_id`` in one transaction."""

    async def emit(org_id: uuid.UUID, events: Sequence[DomainEvent]) -> None:
        async with db.session(org_id) as session:
            await write_outbox(session, events)

    return emit


Changes = Callable[[str, int], list[DomainEvent]]


@pytest.fixture
def changes() -> Changes:
    """``changes(order_id, n)``: n successive status changes of one order (order matters)."""

    def changes(aggregate_id: str, count: int) -> list[DomainEvent]:
        return [
            PaymentOrderStatusChanged(
                aggregate_id=aggregate_id, old_status=f"s{i}", new_status=f"s{i + 1}"
            )
            for i in range(count)
        ]

    return changes


Receive = Callable[[EventConsumer, set[uuid.UUID], int], Awaitable[list[ReceivedEvent]]]


@pytest.fixture
def receive() -> Receive:
    """``receive(consumer, org_ids, n)``: the next n distinct events of those organizations.

    Other tests' leftovers may share the topic; they are skipped. Waits at most 30 s.
    """

    async def receive(
        consumer: EventConsumer, org_ids: set[uuid.UUID], count: int
    ) -> list[ReceivedEvent]:
        found: list[ReceivedEvent] = []
        async with asyncio.timeout(30):
            while len(found) < count:
                found.extend(e for e in await consumer.take(1) if e.org_id in org_ids)
        return found

    return receive


class LogWatch(logging.Handler):
    """Collects ``tenancy`` log records and lets a test await one that matches."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._arrived.set()

    async def wait_for(self, matches: Callable[[logging.LogRecord], bool]) -> logging.LogRecord:
        """Return the first record that ``matches``, waiting up to 30 s for it."""
        async with asyncio.timeout(30):
            while True:
                self._arrived.clear()
                for record in self.records:
                    if matches(record):
                        return record
                await self._arrived.wait()


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    """A ``LogWatch`` attached to the ``tenancy`` logger for this test."""
    watch = LogWatch()
    logger = logging.getLogger("tenancy")
    previous = logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.DEBUG)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float = 30) -> None:
    """Await ``condition`` becoming true, checking it every 50 ms (state in another process)."""
    async with asyncio.timeout(within):
        # The state lives in another process (a relay subprocess): no event to await.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    """``await until(condition)``: see ``eventually``."""
    return eventually
