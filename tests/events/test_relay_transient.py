"""Broker errors are transient unless known to be permanent; transient ones cost no attempt.

After a broker restart, aiokafka reports ``UnknownError [-1]`` (which it flags as
not retriable) for records that the next attempt delivers: such an event must be
retried, never dead-lettered, and its aggregate's later events must wait for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from aiokafka import errors as kafka_errors  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.errors import BrokerUnavailable
from tenancy.relay.claims import RelayOutbox
from tenancy.relay.kafka import EventConsumer, KafkaPublisher, to_publish_error
from tenancy.relay.publisher import Message, PublishError
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.worker import Relay

pytestmark = pytest.mark.usefixtures("broker")


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.UnknownError(),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.NotLeaderForPartitionError(),
        kafka_errors.NodeNotReadyError(),
        kafka_errors.UnknownTopicOrPartitionError(),
        kafka_errors.LeaderNotAvailableError(),
        kafka_errors.NotEnoughReplicasError(),
    ],
    ids=type,
)
def test_broker_errors_not_known_to_be_permanent_are_transient(error: Exception) -> None:
    assert to_publish_error(error).retriable


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.MessageSizeTooLargeError(),
        kafka_errors.RecordTooLargeError(),
        kafka_errors.CorruptRecordException(),
        kafka_errors.InvalidTopicError(),
        kafka_errors.TopicAuthorizationFailedError(),
        kafka_errors.ClusterAuthorizationFailedError(),
        kafka_errors.GroupAuthorizationFailedError(),
    ],
    ids=type,
)
def test_too_large_invalid_and_unauthorized_records_are_permanent(error: Exception) -> None:
    assert not to_publish_error(error).retriable


def test_lost_connection_and_timeout_mean_the_broker_is_unavailable() -> None:
    assert isinstance(to_publish_error(kafka_errors.KafkaConnectionError()), BrokerUnavailable)
    assert isinstance(to_publish_error(kafka_errors.KafkaTimeoutError()), BrokerUnavailable)


class RestartingBrokerPublisher(KafkaPublisher):
    """The real publisher, except that the first ``rounds`` sends of records with one of
    ``keys`` fail as a restarting broker answers them: ``UnknownError [-1]``."""

    def __init__(self, settings: KafkaSettings, keys: set[bytes], rounds: int) -> None:
        super().__init__(settings)
        self.keys = keys
        self.left = rounds

    async def publish(self, messages: Sequence[Message]) -> list[PublishError | None]:
        if self.left <= 0 or not any(m.key in self.keys for m in messages):
            return await super().publish(messages)
        self.left -= 1
        passed = [m for m in messages if m.key not in self.keys]
        sent = iter(await super().publish(passed))
        unknown = to_publish_error(kafka_errors.UnknownError())
        return [unknown if m.key in self.keys else next(sent) for m in messages]


async def outbox_rows(admin_engine: AsyncEngine, org_id: uuid.UUID) -> list[tuple[str, int]]:
    async with admin_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT status, attempts FROM outbox_events WHERE org_id = :org"),
            {"org": org_id},
        )
        return sorted((status, attempts) for status, attempts in result)


async def test_unknown_broker_error_is_retried_and_never_dead_letters(
    settings: TenancySettings,
    relay_settings: RelaySettings,
    kafka_settings: KafkaSettings,
    admin_engine: AsyncEngine,
    org_a: uuid.UUID,
    emit,
    changes,
    receive,
) -> None:
    restarting, healthy = str(uuid.uuid4()), str(uuid.uuid4())
    events = {restarting: changes(restarting, 3), healthy: changes(healthy, 3)}
    for step in range(3):
        await emit(org_a, [events[restarting][step], events[healthy][step]])
    # One attempt: had UnknownError counted, the event would be dead at once.
    strict = relay_settings.model_copy(update={"max_attempts": 1})
    engine = create_engine(settings, url=relay_url(settings, strict))
    publisher = RestartingBrokerPublisher(kafka_settings, {restarting.encode()}, rounds=4)
    relay = Relay(RelayOutbox(engine, strict), publisher, send_timeout=3.0)
    try:
        async with (
            relay.running(),
            EventConsumer(
                kafka_settings,
                [*{type(e) for e in events[healthy]}],
                topic_prefix=strict.topic_prefix,
            ) as consumer,
        ):
            received = await receive(consumer, {org_a}, 6)
    finally:
        await publisher.close()
        await engine.dispose()

    for order, expected in events.items():
        arrived = [r.event.event_id for r in received if r.event.aggregate_id == order]
        assert arrived == [e.event_id for e in expected]
    assert await outbox_rows(admin_engine, org_a) == [("published", 0)] * 6
    assert (relay.stats.dead, relay.stats.transient) == (0, 4)
