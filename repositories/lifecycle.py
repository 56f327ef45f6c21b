"""Created/updated/deleted events that the base repository raises for every aggregate.

Aggregates with richer events (payment orders, links, ...) raise those instead
or in addition; these generic ones make every write visible downstream.
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

from tenancy.events.domain_event import DomainEvent


class AggregateCreated(DomainEvent):
    """An aggregate was created; ``data`` holds its columns."""

    data: dict[str, Any]


class AggregateUpdated(DomainEvent):
    """An aggregate changed; ``changes`` holds the new values of changed columns."""

    changes: dict[str, Any]


class AggregateDeleted(DomainEvent):
    """An aggregate was deleted."""


def aggregate_type_of(table_name: str) -> str:
    """Return the aggregate type name for a table (``payment_orders`` -> ``payment_order``)."""
    return table_name[:-1] if table_name.endswith("s") else table_name


@cache
def lifecycle_event(base: type[DomainEvent], model_name: str, table_name: str) -> type[DomainEvent]:
    """Return the event class ``<Model><Created|Updated|Deleted>`` for one aggregate."""
    suffix = base.__name__.removeprefix("Aggregate")
    namespace = {
        "__module__": __name__,
        "__doc__": f"{model_name} {suffix.lower()}.",
        "aggregate_type": aggregate_type_of(table_name),
        "__annotations__": {"aggregate_type": ClassVar[str]},
    }
    event_class: type[DomainEvent] = type(f"{model_name}{suffix}", (base,), namespace)
    return event_class


def column_names(model: type[Any]) -> frozenset[str]:
    """Return the attribute names of ``model``'s mapped columns."""
    names = _COLUMN_NAMES.get(model)
    if names is None:
        names = _COLUMN_NAMES[model] = frozenset(attr.key for attr in model.__mapper__.column_attrs)
    return names


_COLUMN_NAMES: dict[type[Any], frozenset[str]] = {}


def loaded_columns(obj: object) -> dict[str, Any]:
    """Return ``obj``'s loaded column values (for event payloads).

    Loaded values only: reading a deferred column would be I/O, and may be refused.
    ``DomainEvent.payload()`` renders datetimes, UUIDs and Decimals as JSON.
    """
    loaded = obj.__dict__
    return {name: loaded[name] for name in column_names(type(obj)) if name in loaded}
