"""Aggregate queries over payment orders: totals per status and currency, daily revenue.

Statements are built here without I/O; ``PaymentOrderRepository`` runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, literal_column, select

from repositories.models import PaymentOrder
from repositories.models.enums import PaymentOrderStatus
from tenancy.errors import InvalidData

#: Ten years of days: a bound on the rows one revenue report may produce.
MAX_REVENUE_DAYS = 3660


@dataclass(frozen=True)
class OrderTotal:
    """How many orders have one status in one currency, and their summed amount."""

    status: str
    currency: str
    order_count: int
    amount: int


@dataclass(frozen=True)
class DailyRevenue:
    """Paid amount and number of paid orders for one UTC day in one currency."""

    day: date
    amount: int
    order_count: int


def totals_statement() -> Select[str, str, int, int]:
    """Return the GROUP BY status, currency statement (filter it with a specification)."""
    return (
        select(
            PaymentOrder.status,
            PaymentOrder.currency,
            func.count().label("order_count"),
            func.sum(PaymentOrder.amount).label("amount"),
        )
        .group_by(PaymentOrder.status, PaymentOrder.currency)
        .order_by(PaymentOrder.status, PaymentOrder.currency)
    )


def totals_from(rows: Iterable[Any]) -> list[OrderTotal]:
    """Return typed totals from the rows of ``totals_statement``."""
    # sum(bigint) is numeric in Postgres; amounts are whole minor units.
    return [OrderTotal(r.status, r.currency, int(r.order_count), int(r.amount)) for r in rows]


def revenue_statement(currency: str, start: date, end: date) -> Select[Any]:
    """Return paid amounts per UTC day of ``created_at`` for ``[start, end]`` in ``currency``.

    The range is turned into ``created_at`` bounds so the index on
    ``(org_id, created_at)`` applies; only days that have orders come back.

    Raises:
        InvalidData: ``end`` precedes ``start``, or the range is too long.
    """
    if end < start:
        raise InvalidData("the end of a date range must not precede its start")
    if (end - start).days >= MAX_REVENUE_DAYS:
        raise InvalidData(f"a revenue report covers at most {MAX_REVENUE_DAYS} days")
    low = datetime.combine(start, time.min, UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, UTC)
    # Constants, not input: written as literals so SELECT and GROUP BY are the
    # same expression (two bind parameters would make them different to Postgres).
    day = func.date_trunc(
        literal_column("'day'"), func.timezone(literal_column("'UTC'"), PaymentOrder.created_at)
    )
    return (
        select(
            day.label("day"),
            func.sum(PaymentOrder.amount).label("amount"),
            func.count().label("order_count"),
        )
        .where(
            PaymentOrder.status == PaymentOrderStatus.PAID.value,
            PaymentOrder.currency == currency,
            PaymentOrder.created_at >= low,
            PaymentOrder.created_at < high,
        )
        .group_by(day)
    )


def revenue_from(rows: Iterable[Any], start: date, end: date) -> list[DailyRevenue]:
    """Return one entry per day of ``[start, end]``, zero where nothing was paid."""
    by_day = {r.day.date(): (int(r.amount), int(r.order_count)) for r in rows}
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [DailyRevenue(d, *by_day.get(d, (0, 0))) for d in days]
