"""Checks of caller input shared by the catalog and payment repositories.

They run before any SQL, so a typo fails loudly instead of matching no rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from tenancy.errors import InvalidData

_CURRENCY = re.compile(r"[A-Z]{3}")

EnumT = TypeVar("EnumT", bound=StrEnum)


def parse_member(enum: type[EnumT], value: str, *, what: str, constraint: str) -> EnumT:
    """Return ``value`` as a member of ``enum``.

    Raises:
        InvalidData: it is not one (``what`` names it, ``constraint`` is the check it would fail).
    """
    try:
        return enum(value)
    except ValueError as exc:
        raise InvalidData(f"unknown {what} {value!r}", constraint=constraint) from exc


def normalize_currency(currency: str) -> str:
    """Return ``currency`` as an upper-case ISO 4217 code.

    Raises:
        InvalidData: it is not three letters.
    """
    code = currency.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise InvalidData(f"currency must be a three-letter ISO 4217 code, not {currency!r}")
    return code


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` if it carries a time zone.

    Raises:
        InvalidData: it is naive (its instant would depend on the server's zone).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidData(f"{name} must be a timezone-aware datetime")
    return value


def statuses_of(enum: type[StrEnum], statuses: Iterable[str]) -> list[str]:
    """Return ``statuses`` checked against ``enum``, in the order given, without duplicates.

    Raises:
        InvalidData: none given, or one is not a member of ``enum``.
    """
    known = {member.value for member in enum}
    checked = list(dict.fromkeys(str(s) for s in statuses))
    if not checked:
        raise InvalidData("at least one status is required")
    unknown = [s for s in checked if s not in known]
    if unknown:
        raise InvalidData(f"unknown status {unknown}; allowed: {sorted(known)}")
    return checked
