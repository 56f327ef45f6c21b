"""Customers and their payment methods.

Payment methods belong to the customer aggregate: their events are raised on the
customer. The database keeps "at most one default per customer" with the partial
unique index ``uq_payment_methods_one_default``; this repository keeps "exactly
one while the customer has any": the first method added becomes the default,
and removing the default promotes the oldest remaining method.

Every payment-method change first locks the customer row ``FOR UPDATE``, so
changes to one customer's methods run one after the other; a default switch
clears the old default before setting the new one, so the index never sees two.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import exists as exists_
from sqlalchemy import select, update

from repositories.base import AsyncRepository
from repositories.customer_specs import CustomerSpecs, parse_method_type
from repositories.domain_events import (
    DefaultPaymentMethodChanged,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentMethodUpdated,
)
from repositories.email_address import normalize_email
from repositories.models import Customer, PaymentMethod, PaymentMethodType
from repositories.validation import Check, checked_values
from tenancy.errors import InvalidData, NotFound
from tenancy.specification import Specification

#: Payment-method columns ``update_payment_method`` may change; the default moves
#: only through ``set_default``.
UPDATABLE_METHOD_COLUMNS = frozenset({"label", "last4"})

#: Customer columns checked (and normalised) before any write reaches SQL.
CUSTOMER_CHECKS: Mapping[str, Check] = {"email": normalize_email}


class CustomerRepository(AsyncRepository[Customer, uuid.UUID]):
    """Storage of ``Customer`` aggregates and their payment methods."""

    model = Customer
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "email": "email", "name": "name"}
    natural_key: ClassVar = ("email",)

    async def add(self, obj: Customer) -> Customer:
        """Insert ``obj`` with its email checked and normalised.

        Raises:
            InvalidData: the email is blank or not an address (nothing is sent).
            Conflict: the tenant already has a customer with this email.
        """
        obj.email = normalize_email(obj.email)
        return await super().add(obj)

    async def add_many(self, objs: Sequence[Customer]) -> builtins.list[Customer]:
        """Insert several customers with checked, normalised emails.

        Raises:
            InvalidData: an email is refused (checked for all before any is inserted).
        """
        emails = [normalize_email(obj.email) for obj in objs]
        for obj, email in zip(objs, emails, strict=True):
            obj.email = email
        return await super().add_many(objs)

    async def upsert(self, values: Mapping[str, Any], *, update: Sequence[str] = ()) -> Customer:
        """Insert, or update the ``update`` columns of the customer with the same email.

        Raises:
            InvalidData: the email is refused.
        """
        return await super().upsert(checked_values(values, CUSTOMER_CHECKS), update=update)

    async def update(
        self, id_: uuid.UUID, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Customer:
        """Apply ``changes`` to one customer, a new email checked and normalised.

        Raises:
            NotFound: no such customer in this tenant.
            Conflict: a stale version, or another customer has the new email.
            InvalidData: a change names an unknown column, or the email is refused.
        """
        checked = checked_values(changes, CUSTOMER_CHECKS)
        return await super().update(id_, checked, expected_version=expected_version)

    async def update_where(self, spec: Specification[Customer], changes: Mapping[str, Any]) -> int:
        """Apply ``changes`` to every matching customer; return the count.

        Raises:
            InvalidData: the email is refused.
        """
        return await super().update_where(spec, checked_values(changes, CUSTOMER_CHECKS))

    async def exists(self, spec: Specification[Customer]) -> bool:
        """Return whether any customer matches ``spec``."""
        # Selects FROM customers explicitly: a spec made only of a correlated EXISTS
        # (has_payment_method_type) names no table of its own for the outer query.
        statement = select(exists_(select(Customer.id).where(spec.to_clause())))
        return bool((await self._execute(statement)).scalar_one())

    async def find_by_email(self, email: str) -> Customer | None:
        """Return the tenant's customer with ``email`` (any case), or ``None``."""
        found = await self.list(CustomerSpecs.email_is(email))
        return found[0] if found else None

    async def payment_methods(self, customer_id: uuid.UUID) -> builtins.list[PaymentMethod]:
        """Return a customer's payment methods, oldest first.

        Raises:
            NotFound: no such customer in this tenant.
        """
        await self.get(customer_id)
        statement = (
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id)
            .order_by(PaymentMethod.created_at, PaymentMethod.id)
        )
        return list((await self._execute(statement)).scalars().all())

    async def default_payment_method(self, customer_id: uuid.UUID) -> PaymentMethod | None:
        """Return a customer's default payment method, or ``None`` when it has none.

        Raises:
            NotFound: no such customer in this tenant.
        """
        await self.get(customer_id)
        return await self._default(customer_id)

    async def add_payment_method(
        self,
        customer_id: uuid.UUID,
        kind: PaymentMethodType | str,
        *,
        label: str = "",
        last4: str | None = None,
        make_default: bool = False,
    ) -> PaymentMethod:
        """Store a payment method for a customer; the first one becomes the default.

        Raises:
            NotFound: no such customer in this tenant.
            InvalidData: unknown type, or ``last4`` is not four digits.
        """
        method_type = parse_method_type(kind)
        _check_last4(last4)
        customer = await self._lock(customer_id)
        previous = await self._default(customer_id)
        is_default = make_default or previous is None
        if is_default and previous is not None:
            await self._clear_default(customer_id)
        method = PaymentMethod(
            customer_id=customer_id,
            type=method_type.value,
            label=label,
            last4=last4,
            is_default=is_default,
        )
        self.session.add(method)
        await self._flush()
        customer.record_event(
            PaymentMethodAdded(
                aggregate_id=str(customer.id),
                payment_method_id=method.id,
                type=method.type,
                is_default=is_default,
            )
        )
        if is_default and previous is not None:
            customer.record_event(_default_changed(customer, method))
        return method

    async def update_payment_method(
        self, customer_id: uuid.UUID, method_id: uuid.UUID, changes: Mapping[str, Any]
    ) -> PaymentMethod:
        """Change the label or last four digits of a customer's payment method.

        Raises:
            NotFound: the customer has no such method in this tenant.
            InvalidData: a change names another column, or ``last4`` is not four digits.
        """
        bad = sorted(set(changes) - UPDATABLE_METHOD_COLUMNS)
        if bad:
            raise InvalidData(f"cannot change {bad} on a payment method; use set_default")
        if "last4" in changes:
            _check_last4(changes["last4"])
        customer = await self._lock(customer_id)
        method = await self._method(customer_id, method_id)
        for name, value in changes.items():
            setattr(method, name, value)
        await self._flush()
        customer.record_event(
            PaymentMethodUpdated(
                aggregate_id=str(customer.id), payment_method_id=method.id, changes=dict(changes)
            )
        )
        return method

    async def remove_payment_method(self, customer_id: uuid.UUID, method_id: uuid.UUID) -> None:
        """Delete a customer's payment method; removing the default promotes the oldest other.

        Raises:
            NotFound: the customer has no such method in this tenant.
        """
        customer = await self._lock(customer_id)
        method = await self._method(customer_id, method_id)
        await self.session.delete(method)
        await self._flush()
        customer.record_event(
            PaymentMethodRemoved(aggregate_id=str(customer.id), payment_method_id=method_id)
        )
        if not method.is_default:
            return
        statement = (
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id)
            .order_by(PaymentMethod.created_at, PaymentMethod.id)
            .limit(1)
        )
        successor: PaymentMethod | None = (await self._execute(statement)).scalars().first()
        if successor is not None:
            successor.is_default = True
            await self._flush()
            customer.record_event(_default_changed(customer, successor))

    async def set_default(self, customer_id: uuid.UUID, method_id: uuid.UUID) -> PaymentMethod:
        """Make ``method_id`` the customer's default payment method, atomically.

        Raises:
            NotFound: the customer has no such method in this tenant.
        """
        customer = await self._lock(customer_id)
        method = await self._method(customer_id, method_id)
        if method.is_default:
            return method
        # Clear first, then set, as two statements: the partial unique index is
        # checked row by row and must never see two defaults at once.
        await self._clear_default(customer_id)
        await self._execute(
            update(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id, PaymentMethod.id == method_id)
            .values(is_default=True)
        )
        customer.record_event(_default_changed(customer, method))
        return method

    # -- helpers -------------------------------------------------------------

    async def _lock(self, customer_id: uuid.UUID) -> Customer:
        # Serialises changes to this customer's payment methods (see module doc).
        statement = (
            select(Customer)
            .where(Customer.id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        customer: Customer | None = (await self._execute(statement)).scalars().first()
        if customer is None:
            raise NotFound(f"Customer {customer_id} not found")
        return self._see(customer)

    async def _method(self, customer_id: uuid.UUID, method_id: uuid.UUID) -> PaymentMethod:
        statement = (
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id, PaymentMethod.id == method_id)
            .execution_options(populate_existing=True)
        )
        method: PaymentMethod | None = (await self._execute(statement)).scalars().first()
        if method is None:
            raise NotFound(f"Customer {customer_id} has no payment method {method_id}")
        return method

    async def _default(self, customer_id: uuid.UUID) -> PaymentMethod | None:
        statement = (
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id, PaymentMethod.is_default)
            .execution_options(populate_existing=True)
        )
        method: PaymentMethod | None = (await self._execute(statement)).scalars().first()
        return method

    async def _clear_default(self, customer_id: uuid.UUID) -> None:
        await self._execute(
            update(PaymentMethod)
            .where(PaymentMethod.customer_id == customer_id, PaymentMethod.is_default)
            .values(is_default=False)
        )


def _check_last4(last4: object) -> None:
    if last4 is None:
        return
    if not (isinstance(last4, str) and len(last4) == 4 and last4.isascii() and last4.isdigit()):
        raise InvalidData("last4 must be exactly four digits")


def _default_changed(customer: Customer, method: PaymentMethod) -> DefaultPaymentMethodChanged:
    return DefaultPaymentMethodChanged(aggregate_id=str(customer.id), payment_method_id=method.id)
