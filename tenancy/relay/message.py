"""The broker record of a claimed event: topic per aggregate type, key, value and headers."""

from __future__ import annotations

import re

from tenancy.observability.observer import valid_traceparent
from tenancy.relay.claims import ClaimedEvent
from tenancy.relay.publisher import (
    AGGREGATE_TYPE_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    ORG_ID_HEADER,
    TRACEPARENT_HEADER,
    Message,
    PublishError,
)

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def to_message(event: ClaimedEvent, topic_prefix: str) -> Message:
    """Build the record for ``event``: topic per aggregate type, key = aggregate id.

    Raises:
        PublishError: (not retriable) the topic name is not one Kafka accepts.
    """
    topic = f"{topic_prefix}{event.aggregate_type}"
    if _TOPIC.match(topic) is None:
        raise PublishError(f"invalid topic name {topic!r}", retriable=False)
    headers = [
        (EVENT_ID_HEADER, str(event.id).encode()),
        (EVENT_TYPE_HEADER, event.event_type.encode()),
        (ORG_ID_HEADER, str(event.org_id).encode()),
        (AGGREGATE_TYPE_HEADER, event.aggregate_type.encode()),
    ]
    # Only a well-formed traceparent: the column is writable by the app role.
    traceparent = valid_traceparent(event.trace_context)
    if traceparent is not None:
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return Message(
        topic=topic,
        key=event.aggregate_id.encode(),
        value=event.payload.encode(),
        headers=tuple(headers),
    )
