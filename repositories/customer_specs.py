"""Reusable specifications over customers, including criteria on their payment methods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists

from repositories.email_address import email_key
from repositories.models import Customer, PaymentMethod, PaymentMethodType
from repositories.validation import parse_member
from tenancy.errors import InvalidData
from tenancy.specification import Specification


def parse_method_type(kind: PaymentMethodType | str) -> PaymentMethodType:
    """Return ``kind`` as a ``PaymentMethodType``.

    Raises:
        InvalidData: ``kind`` is not a payment method type.
    """
    return parse_member(
        PaymentMethodType, kind, what="payment method type", constraint="ck_payment_methods_type"
    )


class CustomerSpecs:
    """Constructors of customer specifications; combine them with ``&``, ``|`` and ``~``."""

    @staticmethod
    def email_is(email: str) -> Specification[Customer]:
        """The customer with ``email`` (any case, surrounding blanks ignored)."""
        return Specification(Customer.email == email_key(email))

    @staticmethod
    def name_contains(fragment: str) -> Specification[Customer]:
        """Customers whose name contains ``fragment``, ignoring case.

        ``%`` and ``_`` in ``fragment`` are matched literally, not as wildcards.
        """
        return Specification(Customer.name.icontains(fragment, autoescape=True))

    @staticmethod
    def created_between(start: datetime, end: datetime) -> Specification[Customer]:
        """Customers created at or after ``start`` and before ``end``.

        Raises:
            InvalidData: a bound has no time zone, or ``end`` precedes ``start``.
        """
        if start.tzinfo is None or end.tzinfo is None:
            # A naive bound would be read in the server's time zone, silently.
            raise InvalidData("created_between needs time-zone-aware datetimes")
        if end < start:
            raise InvalidData("created_between: end precedes start")
        return Specification((Customer.created_at >= start) & (Customer.created_at < end))

    @staticmethod
    def has_payment_method_type(kind: PaymentMethodType | str) -> Specification[Customer]:
        """Customers holding at least one payment method of type ``kind`` (an EXISTS).

        Raises:
            InvalidData: ``kind`` is not a payment method type.
        """
        method_type = parse_method_type(kind).value
        # Correlated explicitly: used where customers is not in the enclosing FROM,
        # it fails to compile instead of silently matching against every customer.
        return Specification(
            exists()
            .where(
                PaymentMethod.org_id == Customer.org_id,
                PaymentMethod.customer_id == Customer.id,
                PaymentMethod.type == method_type,
            )
            .correlate(Customer)
        )
