"""Domain events: immutable pydantic records of something that happened to an aggregate.

Events are collected by the unit of work while it runs, written to the outbox in
the same transaction at commit, and handed to in-process subscribers only after
that commit succeeded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tenancy.schema.declarative import utcnow


class DomainEvent(BaseModel):
    """Base of every domain event; subclasses name their aggregate type.

    ``event_id`` is the de-duplication key downstream; ``aggregate_id`` is the
    Kafka key, so events of one aggregate stay in order.
    """

    model_config = ConfigDict(frozen=True)

    aggregate_type: ClassVar[str] = "unknown"

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=utcnow)
    aggregate_id: str

    @classmethod
    def event_type(cls) -> str:
        """Return the stable name of this event type (the class name)."""
        return cls.__name__

    def payload(self) -> dict[str, Any]:
        """Return the JSON-ready payload stored in the outbox and sent to the broker."""
        return self.model_dump(mode="json")

    def payload_json(self) -> str:
        """Return ``payload()`` as JSON text (serialised by pydantic's core, in one call)."""
        return self.model_dump_json()
