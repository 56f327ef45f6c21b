"""Reusable filters over payment orders, composable with ``&``, ``|`` and ``~``.

Criteria on the customer are correlated ``EXISTS`` subqueries, so combining
them never multiplies rows and ``count`` stays exact.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists

from repositories.currency import normalize_currency
from repositories.email_address import email_key
from repositories.models import Customer, PaymentOrder
from repositories.models.enums import PaymentOrderStatus
from repositories.validation import require_amount, require_aware, statuses_of
from tenancy.errors import InvalidData
from tenancy.specification import Specification

OrderSpec = Specification[PaymentOrder]


class PaymentOrderSpecs:
    """Constructors of payment order specifications (no I/O)."""

    @staticmethod
    def status_in(*statuses: str) -> OrderSpec:
        """Orders whose status is one of ``statuses``.

        Raises:
            InvalidData: no status, or an unknown one.
        """
        return OrderSpec(PaymentOrder.status.in_(statuses_of(PaymentOrderStatus, statuses)))

    @staticmethod
    def created_between(start: datetime, end: datetime) -> OrderSpec:
        """Orders created in the half-open interval ``[start, end)``.

        Raises:
            InvalidData: a naive bound, or ``end`` before ``start``.
        """
        require_aware(start, "start")
        require_aware(end, "end")
        if end < start:
            raise InvalidData("the end of a date range must not precede its start")
        return OrderSpec((PaymentOrder.created_at >= start) & (PaymentOrder.created_at < end))

    @staticmethod
    def amount_between(low: int, high: int) -> OrderSpec:
        """Orders whose amount (minor units) lies in ``[low, high]``, both ends included.

        Raises:
            InvalidData: a bound is not an int, or ``high`` is below ``low``.
        """
        low = require_amount(low, "low", minimum=None)
        high = require_amount(high, "high", minimum=None)
        if high < low:
            raise InvalidData("the upper bound of an amount range must not be below its lower")
        return OrderSpec(PaymentOrder.amount.between(low, high))

    @staticmethod
    def currency_is(currency: str) -> OrderSpec:
        """Orders in ``currency`` (case-insensitive ISO 4217 code).

        Raises:
            InvalidData: not an active ISO 4217 code.
        """
        return OrderSpec(PaymentOrder.currency == normalize_currency(currency))

    @staticmethod
    def for_customer(customer_id: uuid.UUID) -> OrderSpec:
        """Orders of the customer ``customer_id``."""
        return OrderSpec(PaymentOrder.customer_id == customer_id)

    @staticmethod
    def for_customer_email(email: str) -> OrderSpec:
        """Orders of the customer with ``email`` (case-insensitive), via ``EXISTS``."""
        # The correlation repeats org_id: it is the leading column of the composite
        # key, so the subquery is an index probe on the customer's primary key.
        return OrderSpec(
            exists().where(
                Customer.org_id == PaymentOrder.org_id,
                Customer.id == PaymentOrder.customer_id,
                Customer.email == email_key(email),
            )
        )

    @staticmethod
    def for_payment_link(payment_link_id: uuid.UUID) -> OrderSpec:
        """Orders paid through the link ``payment_link_id``."""
        return OrderSpec(PaymentOrder.payment_link_id == payment_link_id)

    @staticmethod
    def for_agent(agent_id: uuid.UUID) -> OrderSpec:
        """Orders placed by the agent ``agent_id``."""
        return OrderSpec(PaymentOrder.agent_id == agent_id)
