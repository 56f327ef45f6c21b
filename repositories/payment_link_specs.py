"""Reusable filters over payment links, composable with ``&``, ``|`` and ``~``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, DateTime, func, literal

from repositories.models import PaymentLink
from repositories.models.enums import PaymentLinkStatus
from repositories.validation import require_aware, statuses_of
from tenancy.specification import Specification

LinkSpec = Specification[PaymentLink]


def _instant(now: datetime | None) -> ColumnElement[datetime]:
    # None means the database's transaction time: one clock for every replica.
    if now is None:
        return func.now()
    return literal(require_aware(now, "now"), DateTime(timezone=True))


class PaymentLinkSpecs:
    """Constructors of payment link specifications (no I/O)."""

    @staticmethod
    def status_in(*statuses: str) -> LinkSpec:
        """Links whose status is one of ``statuses``.

        Raises:
            InvalidData: no status, or an unknown one.
        """
        return LinkSpec(PaymentLink.status.in_(statuses_of(PaymentLinkStatus, statuses)))

    @staticmethod
    def active_at(now: datetime | None = None) -> LinkSpec:
        """Active links not expired at ``now`` (default: the transaction time).

        Exhausted links are still active; combine with ``~exhausted()`` to exclude them.

        Raises:
            InvalidData: ``now`` is naive.
        """
        at = _instant(now)
        return LinkSpec(
            (PaymentLink.status == PaymentLinkStatus.ACTIVE.value)
            & (PaymentLink.expires_at.is_(None) | (PaymentLink.expires_at > at))
        )

    @staticmethod
    def overdue(now: datetime | None = None) -> LinkSpec:
        """Links still marked active whose expiry is at or before ``now``.

        Raises:
            InvalidData: ``now`` is naive.
        """
        return LinkSpec(
            (PaymentLink.status == PaymentLinkStatus.ACTIVE.value)
            & (PaymentLink.expires_at <= _instant(now))
        )

    @staticmethod
    def expiring_before(when: datetime) -> LinkSpec:
        """Active links with an expiry earlier than ``when`` (already overdue ones included).

        Raises:
            InvalidData: ``when`` is naive.
        """
        return LinkSpec(
            (PaymentLink.status == PaymentLinkStatus.ACTIVE.value)
            & (PaymentLink.expires_at < require_aware(when, "when"))
        )

    @staticmethod
    def exhausted() -> LinkSpec:
        """Links that have reached their maximum number of uses."""
        return LinkSpec(
            PaymentLink.max_uses.is_not(None) & (PaymentLink.use_count >= PaymentLink.max_uses)
        )

    @staticmethod
    def for_price(price_id: uuid.UUID) -> LinkSpec:
        """Links that sell the price ``price_id``."""
        return LinkSpec(PaymentLink.price_id == price_id)
