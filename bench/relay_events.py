"""The relay benchmark's event: about 300 bytes of JSON, on topics under one prefix."""

from __future__ import annotations

import json
from typing import ClassVar

from tenancy.events.domain_event import DomainEvent

PAYLOAD_BYTES = 300
TOPIC_PREFIX = "bench."


class BenchOrderUpdated(DomainEvent):
    """A stand-in event; ``note`` pads the payload to the wanted size."""

    aggregate_type: ClassVar[str] = "bench_order"

    note: str


def make_event(aggregate_id: str) -> BenchOrderUpdated:
    """Return an event whose JSON payload is about ``PAYLOAD_BYTES`` long."""
    probe = BenchOrderUpdated(aggregate_id=aggregate_id, note="")
    size = len(json.dumps(probe.payload(), separators=(",", ":")))
    return BenchOrderUpdated(aggregate_id=aggregate_id, note="x" * max(PAYLOAD_BYTES - size, 0))
