"""Ordering and pagination: whitelisted sort keys, offset pages and keyset cursors.

Sort keys are names looked up in a repository's whitelist; the name a caller
passes is never interpolated into SQL. A keyset cursor is opaque to callers
(base64 JSON of the last row's sort values); tampering with it can at most
select other rows of the caller's own tenant, since RLS still filters every row.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from tenancy.errors import InvalidData

ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class OffsetPage:
    """Request ``limit`` rows after skipping ``offset``; the result carries the total."""

    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000 or self.offset < 0:
            raise InvalidData("page limit must be 1..1000 and offset >= 0")


@dataclass(frozen=True)
class KeysetPage:
    """Request ``limit`` rows after the opaque ``after`` cursor (``None``: first page)."""

    limit: int = 50
    after: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000:
            raise InvalidData("page limit must be 1..1000")


@dataclass(frozen=True)
class PageResult(Generic[ItemT]):
    """One page of items with the total row count of the filter."""

    items: list[ItemT]
    total: int


@dataclass(frozen=True)
class KeysetResult(Generic[ItemT]):
    """One page of items and the cursor of the next page (``None`` when exhausted)."""

    items: list[ItemT]
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """A resolved sort key: the column and its direction."""

    name: str
    column: InstrumentedAttribute[Any]
    descending: bool

    def order_clause(self) -> ColumnElement[Any]:
        """Return the ORDER BY element."""
        return self.column.desc() if self.descending else self.column.asc()


def resolve_sort(
    order_by: Sequence[str], whitelist: Mapping[str, InstrumentedAttribute[Any]]
) -> list[SortKey]:
    """Turn ``["-created_at", "amount"]`` into sort keys from ``whitelist``.

    Raises:
        InvalidData: a key is not in the whitelist.
    """
    keys = []
    for raw in order_by:
        name = raw[1:] if raw.startswith("-") else raw
        column = whitelist.get(name)
        if column is None:
            raise InvalidData(f"unknown sort key {name!r}; allowed: {sorted(whitelist)}")
        keys.append(SortKey(name, column, raw.startswith("-")))
    return keys


def keyset_values(keys: Sequence[SortKey], cursor: str) -> list[Any]:
    """Return the sort values of ``cursor``; rows come strictly after them in ``keys`` order.

    Raises:
        InvalidData: the cursor is malformed, or the keys mix directions.
    """
    if len({k.descending for k in keys}) > 1:
        raise InvalidData("keyset pagination needs every sort key in the same direction")
    return decode_cursor(cursor, keys)


def encode_cursor(values: Sequence[Any]) -> str:
    """Return the opaque cursor for a row's sort values."""
    raw = json.dumps([_to_json(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """Return the typed sort values encoded in ``cursor``.

    Raises:
        InvalidData: the cursor is not one this module produced for ``keys``.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(keys):
            raise ValueError("cursor does not match the sort keys")
        return [_from_json(v, k) for v, k in zip(raw, keys, strict=True)]
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidData("malformed pagination cursor") from exc


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    return value


def _from_json(value: Any, key: SortKey) -> Any:
    python_type = key.column.type.python_type
    if value is None or isinstance(value, python_type):
        return value
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type in (uuid.UUID, Decimal, int):
        return python_type(value)
    raise ValueError(f"cannot decode cursor value for {key.name}")
