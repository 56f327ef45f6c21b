"""Checks of caller input shared by the catalog and payment repositories.

They run before any SQL, so a typo fails loudly instead of matching no rows,
and a value the database would coerce (``1.5`` into a bigint column is ``2``)
never gets that far. The schema's CHECK constraints stay as the second layer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from tenancy.errors import InvalidData

EnumT = TypeVar("EnumT", bound=StrEnum)

#: A check of one column's value: returns the value to store, or raises ``InvalidData``.
Check = Callable[[object], object]

#: The largest value of a Postgres ``bigint`` column (amounts in minor units).
BIGINT_MAX = 2**63 - 1

#: How many values an error message lists before it says how many more there are.
SHOWN_VALUES = 5

#: How many characters of one value's ``repr`` an error message shows.
SHOWN_CHARS = 40


def shown(value: object) -> str:
    """Return ``repr(value)`` cut to ``SHOWN_CHARS`` characters (for error messages)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 3]}..."


def shown_values(values: Collection[object]) -> str:
    """Return the first ``SHOWN_VALUES`` of ``values`` and how many were left out.

    An error message must stay readable and bounded whatever the caller passed:
    10,000 unknown statuses are five shown and "and 9995 more".
    """
    listed = ", ".join(shown(v) for v, _ in zip(values, range(SHOWN_VALUES), strict=False))
    extra = len(values) - SHOWN_VALUES
    return f"[{listed}]" if extra <= 0 else f"[{listed}] and {extra} more"


def require_int(
    value: object,
    field: str,
    *,
    minimum: int | None = None,
    maximum: int = BIGINT_MAX,
    unit: str = "",
) -> int:
    """Return ``value`` as a plain ``int`` within ``[minimum, maximum]``.

    Only ``int`` and its subclasses other than ``bool`` are accepted: ``bool`` is
    an ``int`` subclass, so ``True`` would otherwise be stored as 1.

    Raises:
        InvalidData: not an int, or out of range (the message names ``field``).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise InvalidData(f"{field} must be an int{unit}, not {kind} {shown(value)}")
    # A plain int: an IntEnum or other subclass would reach events and bind parameters as itself.
    number = int(value)
    if minimum is not None and number < minimum:
        raise InvalidData(f"{field} must be at least {minimum}{unit}")
    if number > maximum:
        raise InvalidData(f"{field} must be at most {maximum}{unit}")
    return number


def require_amount(
    value: object, field: str, *, minimum: int | None = 0, maximum: int = BIGINT_MAX
) -> int:
    """Return ``value`` as a plain ``int`` of minor units.

    Floats and decimals are refused even when integral: a ``Decimal('2.00')``
    usually means the caller holds major units, and guessing is how 2.5 became 2.

    Raises:
        InvalidData: not an int, below ``minimum`` or above ``maximum`` (named by ``field``).
    """
    return require_int(value, field, minimum=minimum, maximum=maximum, unit=" (minor units)")


def amount_check(field: str, *, minimum: int | None = 0, maximum: int = BIGINT_MAX) -> Check:
    """Return a ``Check`` applying ``require_amount`` to ``field``."""

    def check(value: object) -> int:
        return require_amount(value, field, minimum=minimum, maximum=maximum)

    return check


def checked_values(values: Mapping[str, Any], checks: Mapping[str, Check]) -> dict[str, Any]:
    """Return ``values`` with every checked column replaced by its checked value.

    Raises:
        InvalidData: a checked column's value is refused.
    """
    return {
        name: checks[name](value) if name in checks else value for name, value in values.items()
    }


def check_object(obj: object, checks: Mapping[str, Check]) -> None:
    """Replace each checked attribute of ``obj`` that is set by its checked value.

    An unset or ``None`` attribute is left alone: its NOT NULL constraint reports it.

    Raises:
        InvalidData: an attribute's value is refused (``obj`` is then unchanged).
    """
    # Check everything before changing anything, so a refused object is left as given.
    state = vars(obj)
    new = {
        name: check(state[name]) for name, check in checks.items() if state.get(name) is not None
    }
    for name, value in new.items():
        setattr(obj, name, value)


def parse_member(enum: type[EnumT], value: str, *, what: str, constraint: str) -> EnumT:
    """Return ``value`` as a member of ``enum``.

    Raises:
        InvalidData: it is not one (``what`` names it, ``constraint`` is the check it would fail).
    """
    try:
        return enum(value)
    except ValueError as exc:
        raise InvalidData(f"unknown {what} {shown(value)}", constraint=constraint) from exc


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
        raise InvalidData(f"unknown status {shown_values(unknown)}; allowed: {sorted(known)}")
    return checked
