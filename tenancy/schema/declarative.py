"""Declarative base, naming convention and the columns every tenant table shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import DateTime, ForeignKey, MetaData, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session

#: Constraint names are part of the contract: errors are translated by them and
#: the audit reads them, so every constraint gets a predictable name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The tenant predicate's value: the transaction-local setting, NULL when unset or
#: reset to the empty string (what a pooled connection reports after SET LOCAL).
TENANT_SETTING_SQL = "nullif(current_setting('app.org_id', true), '')::uuid"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


#: ``Session.info`` key of the dict in which a unit of work holds (strongly) the
#: aggregates with pending events until it collects them.
EVENT_HOLDERS_KEY = "tenancy.event_holders"


class Base(DeclarativeBase):
    """Base class of every ORM model; each instance can record domain events.

    Events wait on the aggregate that raised them until the unit of work collects
    them at commit (from the aggregates its repositories have seen).
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
    }

    def record_event(self, event: object) -> None:
        """Queue ``event`` on this aggregate until the unit of work commits."""
        # Kept in __dict__ rather than a mapped attribute: instances loaded from the
        # database never run __init__, and events are never persisted on the row.
        self.__dict__.setdefault("_pending_events", []).append(event)
        # A unit of work holds unchanged aggregates weakly; one with events must
        # live until commit even if the caller drops it.
        session = object_session(self)
        holders = session.info.get(EVENT_HOLDERS_KEY) if session is not None else None
        if holders is not None:
            holders[id(self)] = self

    def pull_events(self) -> list[object]:
        """Return and forget the events recorded since the last pull."""
        events: list[object] = self.__dict__.pop("_pending_events", [])
        return events


class TenantOwned:
    """Mixin for tenant-owned tables: ``org_id`` leads the primary key.

    ``org_id`` defaults from the tenant setting in the database, and the session
    fills it from its own tenant before flush, so callers never pass it; RLS
    ``WITH CHECK`` still verifies it on every write.
    """

    __tenant_owned__: ClassVar[bool] = True

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
        server_default=text(TENANT_SETTING_SQL),
    )
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


def is_tenant_owned(cls: type) -> bool:
    """Return whether ORM class ``cls`` is a tenant-owned model."""
    return bool(getattr(cls, "__tenant_owned__", False))


def is_tenant_root(cls: type) -> bool:
    """Return whether ORM class ``cls`` is the tenants' own table (``__tenant_root__``).

    Its ``id`` is the tenant id that every tenant-owned row carries as ``org_id``.
    """
    return bool(cls.__dict__.get("__tenant_root__", False))


def check_in(column: str, values: tuple[str, ...]) -> str:
    """Render a CHECK expression restricting ``column`` to ``values`` (constants, not input)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """Return the stored values of ``enum`` in declaration order."""
    return tuple(member.value for member in enum)
