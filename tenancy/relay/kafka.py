"""The one module that imports aiokafka: ``KafkaPublisher`` and ``EventConsumer``.

Lessons from mature outboxes kept here: every send and every stop is bounded by
a timeout (aiokafka's futures and ``stop()`` can wait for a broker that is gone);
a producer that hit a fatal error or a timeout is thrown away and rebuilt on the
next use; a batch is enqueued in full before any acknowledgement is awaited, so
aiokafka packs it into few produce requests instead of one round trip per event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

# aiokafka ships no type information (no py.typed); its use is confined to this module.
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka import errors as kafka_errors
from aiokafka.codec import has_lz4, has_snappy, has_zstd  # type: ignore[import-untyped]
from pydantic import ValidationError

from tenancy.errors import ConfigurationError
from tenancy.events.domain_event import DomainEvent
from tenancy.log import get_logger
from tenancy.relay.publisher import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    ORG_ID_HEADER,
    BrokerUnavailable,
    Message,
    PublishError,
)
from tenancy.relay.settings import KafkaSettings

logger = get_logger(__name__)

# Errors about one message; the producer itself is fine. Anything else (timeouts,
# lost connections, fencing, sequence errors) rebuilds the producer.
_MESSAGE_ERRORS = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.PolicyViolationError,
    kafka_errors.TopicAuthorizationFailedError,
)
# The only errors that sending the same record again cannot cure: it is too big,
# malformed, addressed to a topic that cannot exist, or we are not allowed to
# write. Everything else, including UnknownError [-1] that brokers answer while
# restarting, is transient: a broker outage of any length must cost no attempts.
_PERMANENT_ERRORS = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidMessageError,
    kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
)
_CODECS = {"snappy": has_snappy, "lz4": has_lz4, "zstd": has_zstd}


def _client_options(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_username is not None:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        password = settings.sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def to_publish_error(exc: BaseException) -> PublishError:
    """Classify a send failure: permanent only if it is one of ``_PERMANENT_ERRORS``.

    aiokafka's own ``retriable`` flag is not used: it is false for errors a broker
    answers while it restarts (``UnknownError``), which would dead-letter events
    that the next attempt delivers.
    """
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, _PERMANENT_ERRORS):
        return PublishError(message, retriable=False)
    if isinstance(exc, kafka_errors.KafkaTimeoutError | kafka_errors.KafkaConnectionError):
        return BrokerUnavailable(message)
    return PublishError(message, retriable=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Futures abandoned after a timeout fail later; reading the exception keeps
    # asyncio from reporting it as never retrieved.
    if not future.cancelled():
        future.exception()


class KafkaPublisher:
    """``Publisher`` over aiokafka, with bounded sends and a rebuilt-on-failure producer."""

    def __init__(self, settings: KafkaSettings) -> None:
        """Check the settings; nothing connects until ``start``.

        Raises:
            ConfigurationError: the compression codec's library is not installed.
        """
        check = _CODECS.get(settings.compression_type)
        if check is not None and not check():
            raise ConfigurationError(
                f"compression {settings.compression_type!r} needs aiokafka's "
                f"{settings.compression_type} extra (the cramjam package)"
            )
        self.settings = settings
        self._producer: Any = None
        self.rebuilds = 0

    def _new_producer(self) -> Any:
        settings = self.settings
        return AIOKafkaProducer(
            **_client_options(settings),
            acks=settings.acks if settings.acks == "all" else int(settings.acks),
            enable_idempotence=settings.enable_idempotence,
            compression_type=None
            if settings.compression_type == "none"
            else settings.compression_type,
            linger_ms=settings.linger_ms,
            max_batch_size=settings.max_batch_size,
            max_request_size=settings.max_request_size,
        )

    async def start(self) -> None:
        """Connect if not connected (bounded by ``connect_timeout``).

        Raises:
            BrokerUnavailable: the broker cannot be reached in time.
        """
        if self._producer is not None:
            return
        producer = self._new_producer()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await producer.start()
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            await self._stop(producer)
            raise BrokerUnavailable(
                f"cannot connect to {self.settings.bootstrap_servers}: {type(exc).__name__}"
            ) from exc
        except BaseException:
            # Cancelled while connecting: close what was opened, then go on cancelling.
            await self._stop(producer)
            raise
        self._producer = producer

    async def publish(self, messages: Sequence[Message]) -> list[PublishError | None]:
        """Send ``messages`` together; wait at most ``send_timeout`` for all acks.

        Raises:
            BrokerUnavailable: not connected and cannot connect.
        """
        await self.start()
        producer = self._producer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.send_timeout
        results: list[PublishError | None] = [None] * len(messages)
        waiting: dict[asyncio.Future[Any], int] = {}
        rebuild = False
        enqueued = 0
        try:
            async with asyncio.timeout_at(deadline):
                for index, message in enumerate(messages):
                    try:
                        future = await producer.send(
                            message.topic,
                            message.value,
                            key=message.key,
                            headers=list(message.headers),
                        )
                    except kafka_errors.KafkaError as exc:
                        results[index] = to_publish_error(exc)
                        rebuild |= not isinstance(exc, _MESSAGE_ERRORS)
                    else:
                        future.add_done_callback(_retrieve)
                        waiting[future] = index
                    enqueued = index + 1
        except TimeoutError:
            for index in range(enqueued, len(messages)):
                results[index] = BrokerUnavailable("send timed out before the message was queued")
            rebuild = True
        if waiting:
            done, late = await asyncio.wait(waiting, timeout=max(deadline - loop.time(), 0))
            for future in done:
                error = future.exception()
                if error is not None:
                    results[waiting[future]] = to_publish_error(error)
                    rebuild |= not isinstance(error, _MESSAGE_ERRORS)
            for future in late:
                results[waiting[future]] = BrokerUnavailable("no acknowledgement within timeout")
            rebuild |= bool(late)
        if rebuild:
            await self._rebuild()
        return results

    async def _rebuild(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            self.rebuilds += 1
            logger.warning("kafka producer failed; it is rebuilt on next use")
            await self._stop(producer)

    async def close(self) -> None:
        """Flush and disconnect within ``close_timeout``; idempotent."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop(producer)

    async def _stop(self, producer: Any) -> None:
        try:
            async with asyncio.timeout(self.settings.close_timeout):
                await producer.stop()
        except TimeoutError:
            # stop() flushes, and a batch for a gone broker waits out its whole
            # request timeout; close the connections instead of waiting for that.
            logger.warning("kafka producer did not stop in time; closing its connections")
            await producer.client.close()
        except kafka_errors.KafkaError as exc:
            logger.warning("kafka producer stopped with %s", type(exc).__name__)


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event read from the broker, with where it came from."""

    event: DomainEvent
    org_id: uuid.UUID
    topic: str
    key: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int
    #: The record's Kafka timestamp, ms since the epoch: when the relay sent it
    #: (``CreateTime``, the default), or when the broker appended it.
    timestamp_ms: int | None = None


class EventConsumer:
    """Async iterator over events of the given types, each event id yielded once.

    ``async with EventConsumer(settings, [PaymentOrderCreated]) as events:``
    then ``async for received in events``. Topics are ``topic_prefix`` plus each
    type's aggregate type. The relay delivers at least once, so a redelivered
    event (same organization and ``event_id``, from the record's headers, which
    must agree with the payload) is dropped; the memory of seen ids is bounded by
    ``dedup_capacity`` (oldest forgotten first) and lasts for this consumer only.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        event_types: Iterable[type[DomainEvent]],
        *,
        topic_prefix: str = "tenancy.",
        group_id: str | None = None,
        from_beginning: bool = True,
        dedup_capacity: int = 100_000,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        self._types = {cls.event_type(): cls for cls in event_types}
        if not self._types:
            raise ValueError("name at least one event type to consume")
        topics = {f"{topic_prefix}{cls.aggregate_type}" for cls in self._types.values()}
        self.topics = sorted(topics)
        self._options: dict[str, Any] = {
            **_client_options(settings),
            "group_id": group_id,
            "auto_offset_reset": "earliest" if from_beginning else "latest",
            # New topics appear within a second (the relay creates them on first send).
            "metadata_max_age_ms": 1_000,
            # aiokafka waits up to 500 ms by default; some brokers hold a fetch that
            # long even when records are there, which is all latency to a consumer.
            "fetch_max_wait_ms": fetch_max_wait_ms,
        }
        self._consumer: Any = None
        self._settings = settings
        self._seen: OrderedDict[tuple[uuid.UUID, uuid.UUID], None] = OrderedDict()
        self._capacity = dedup_capacity
        self.duplicates = 0
        self.invalid = 0

    async def __aenter__(self) -> Self:
        self._consumer = AIOKafkaConsumer(*self.topics, **self._options)
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                await self._consumer.start()
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            await self._stop()
            raise BrokerUnavailable(f"cannot start consumer: {type(exc).__name__}") from exc
        except BaseException:
            # Cancelled while connecting: close what was opened, then go on cancelling.
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        try:
            async with asyncio.timeout(self._settings.close_timeout):
                await self._consumer.stop()
        except TimeoutError:
            logger.warning("kafka consumer did not stop in time")

    def __aiter__(self) -> AsyncIterator[ReceivedEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ReceivedEvent]:
        async for record in self._consumer:
            received = self._parse(record)
            if received is not None:
                yield received

    async def take(self, count: int) -> list[ReceivedEvent]:
        """Return the next ``count`` distinct events (bound the wait with ``asyncio.timeout``)."""
        taken: list[ReceivedEvent] = []
        while len(taken) < count:
            received = self._parse(await self._consumer.getone())
            if received is not None:
                taken.append(received)
        return taken

    def _parse(self, record: Any) -> ReceivedEvent | None:
        headers = {name: value for name, value in record.headers or ()}
        event_class = self._types.get(headers.get(EVENT_TYPE_HEADER, b"").decode())
        if event_class is None:
            return None
        try:
            event = event_class.model_validate_json(record.value)
            org_id = uuid.UUID(headers[ORG_ID_HEADER].decode())
            if uuid.UUID(headers[EVENT_ID_HEADER].decode()) != event.event_id:
                # The relay writes both from one outbox row; a record where they
                # differ was not written by it.
                raise ValueError("the event id header and the payload disagree")
        except (ValidationError, KeyError, ValueError) as exc:
            # Raising would stop this consumer on the same record forever; skipping
            # it is loud instead: an ERROR naming the record, and a counter.
            self.invalid += 1
            logger.error(
                "skipping unreadable %s record at %s[%d]@%d: %s",
                event_class.event_type(),
                record.topic,
                record.partition,
                record.offset,
                type(exc).__name__,
            )
            return None
        # Event ids are unique per organization, not across them: one tenant's event
        # must never hide another's that carries the same id.
        seen_key = (org_id, event.event_id)
        if seen_key in self._seen:
            self.duplicates += 1
            return None
        self._seen[seen_key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return ReceivedEvent(
            event=event,
            org_id=org_id,
            topic=record.topic,
            key=record.key,
            headers=headers,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
        )
