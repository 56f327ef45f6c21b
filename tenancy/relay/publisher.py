"""The ``Publisher`` protocol: what the relay needs of a message broker.

Only ``tenancy.relay.kafka`` implements it with a real client; the relay, the outbox
and the tests speak this vocabulary, so the broker client stays in one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenancy.errors import BrokerUnavailable, PublishError

#: Headers the relay sets on every record (values are UTF-8 text).
EVENT_ID_HEADER = "event_id"
EVENT_TYPE_HEADER = "event_type"
ORG_ID_HEADER = "org_id"
AGGREGATE_TYPE_HEADER = "aggregate_type"
#: The W3C trace context of the transaction that wrote the event (when it was traced).
TRACEPARENT_HEADER = "traceparent"


@dataclass(frozen=True, slots=True)
class Message:
    """One record for the broker: topic, partitioning key, value and headers."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Publisher(Protocol):
    """Sends batches of messages and reports, per message, whether it was acknowledged."""

    async def start(self) -> None:
        """Connect if not connected; idempotent.

        Raises:
            BrokerUnavailable: the broker cannot be reached in time.
        """

    async def publish(self, messages: Sequence[Message]) -> list[PublishError | None]:
        """Send ``messages`` together and wait, within a bounded time, for their acks.

        Returns one entry per message, in order: ``None`` once the broker has
        acknowledged it, else the error. Messages with the same topic and key are
        delivered in the order given. Never raises for a single message.

        Raises:
            BrokerUnavailable: not connected and cannot connect.
        """

    async def close(self) -> None:
        """Flush and disconnect, within a bounded time; idempotent."""


__all__ = ["BrokerUnavailable", "Message", "PublishError", "Publisher"]
