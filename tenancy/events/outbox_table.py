"""The transactional outbox: domain events written in the same transaction as the data."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.schema.declarative import TENANT_SETTING_SQL, Base, check_in, utcnow, values

#: The transaction-local setting a traced unit of work sets, and the column's default.
TRACE_CONTEXT_SETTING = "tenancy.traceparent"
TRACE_CONTEXT_DEFAULT = f"nullif(current_setting('{TRACE_CONTEXT_SETTING}', true), '')"


class OutboxStatus(StrEnum):
    """Delivery state of an outbox event."""

    PENDING = "pending"
    PUBLISHED = "published"
    DEAD = "dead"
    #: Dead, then given up by an operator (``tenancy relay discard``): never published.
    DISCARDED = "discarded"


class OutboxEvent(Base):
    """One domain event awaiting (or done with) delivery to the broker.

    Columns follow Debezium's outbox; the delivery bookkeeping (status, attempts,
    lease) belongs to the relay, which alone reads across tenants. There is no FK
    to organizations: an organization's last events must outlive it.
    """

    __tablename__ = "outbox_events"
    __tenant_owned__ = True
    __table_args__ = (
        CheckConstraint(check_in("status", values(OutboxStatus)), name="status"),
        Index("ix_outbox_events_org_id_occurred_at", "org_id", "occurred_at"),
        # The relay's claim path is cross-tenant by design.
        Index(
            "ix_outbox_events_pending",
            "available_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Each claim skips the aggregates that have a dead row (few rows, a big table).
        Index(
            "ix_outbox_events_dead",
            "org_id",
            "aggregate_type",
            "aggregate_id",
            postgresql_where=text("status = 'dead'"),
        ),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text(TENANT_SETTING_SQL)
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    aggregate_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=text("clock_timestamp()")
    )
    # Order of the event inside its transaction: occurred_at alone can tie.
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(
        String(20), default=OutboxStatus.PENDING.value, server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    available_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=text("clock_timestamp()")
    )
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: W3C ``traceparent`` of the transaction that wrote the event, when it was traced:
    #: filled by the database from the transaction's ``SET LOCAL tenancy.traceparent``,
    #: so every way of writing an event carries it without passing it along.
    trace_context: Mapped[str | None] = mapped_column(
        String(55), server_default=text(TRACE_CONTEXT_DEFAULT)
    )
