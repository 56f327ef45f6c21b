"""Payment orders: idempotent creation, lifecycle transitions, searches and reports."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from repositories.base import AsyncRepository
from repositories.currency import normalize_currency
from repositories.domain_events import PaymentOrderCreated, PaymentOrderStatusChanged
from repositories.errors import IdempotencyKeyReused
from repositories.models import PaymentOrder
from repositories.payment_order_lifecycle import check_transition
from repositories.payment_order_report import (
    DailyRevenue,
    OrderTotal,
    revenue_from,
    revenue_statement,
    totals_from,
    totals_statement,
)
from repositories.validation import (
    Check,
    amount_check,
    check_object,
    checked_values,
    require_amount,
)
from tenancy.context import session_tenant
from tenancy.errors import Conflict, InvalidData
from tenancy.specification import Specification

#: Fields a replayed request must repeat exactly to get the existing order back.
_REPLAYED_FIELDS = ("customer_id", "amount", "currency", "payment_link_id", "agent_id")

#: Order columns checked (and normalised) before any write reaches SQL; the
#: CHECK constraints ``amount_positive`` and ``currency_iso4217`` stay behind them.
ORDER_CHECKS: Mapping[str, Check] = {
    "amount": amount_check("amount", minimum=1),
    "currency": normalize_currency,
}


class PaymentOrderRepository(AsyncRepository[PaymentOrder, uuid.UUID]):
    """Storage of ``PaymentOrder`` aggregates.

    ``status`` changes only through ``transition`` (the generic ``update``
    refuses it), so every change is checked against the lifecycle and raises
    ``PaymentOrderStatusChanged``. Lists default to newest first.
    """

    model = PaymentOrder
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "amount": "amount",
        "updated_at": "updated_at",
    }
    default_order: ClassVar = ("-created_at",)

    async def add(self, obj: PaymentOrder) -> PaymentOrder:
        """Insert an order and raise ``PaymentOrderCreated``.

        Raises:
            InvalidData: the amount is not a positive int, or the currency is refused.
            Conflict: its idempotency key is taken (``create`` replays instead).
            ForeignKeyViolation: its customer, link or agent is not this tenant's.
        """
        return (await self.add_many([obj]))[0]

    async def add_many(self, objs: Sequence[PaymentOrder]) -> builtins.list[PaymentOrder]:
        """Insert several orders in one flush, each with its ``PaymentOrderCreated``.

        Raises:
            InvalidData: an amount or currency is refused (before anything is sent).
        """
        for obj in objs:
            check_object(obj, ORDER_CHECKS)
        self.session.add_all(objs)
        await self._flush()
        for obj in objs:
            obj.record_event(_created(obj))
        return self._see_all(objs)

    async def create(
        self,
        customer_id: uuid.UUID,
        amount: int,
        currency: str,
        *,
        idempotency_key: str | None = None,
        payment_link_id: uuid.UUID | None = None,
        agent_id: uuid.UUID | None = None,
        description: str = "",
    ) -> PaymentOrder:
        """Create a pending order, or return the one already created with ``idempotency_key``.

        ``INSERT ... ON CONFLICT (org_id, idempotency_key) DO NOTHING`` then a select:
        a concurrent creation with the same key waits for the other transaction and
        then finds its row, so one key gives one order and one ``PaymentOrderCreated``.

        Raises:
            IdempotencyKeyReused: the key belongs to an order with other parameters.
            ForeignKeyViolation: the customer, link or agent is not this tenant's.
            InvalidData: the amount is not a positive int, the currency is not an
                active ISO 4217 code, or the key is blank.
        """
        if idempotency_key is not None and not idempotency_key.strip():
            raise InvalidData("an idempotency key must not be blank")
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "amount": require_amount(amount, "amount", minimum=1),
            "currency": normalize_currency(currency),
            "payment_link_id": payment_link_id,
            "agent_id": agent_id,
            "idempotency_key": idempotency_key,
            "description": description,
        }
        if idempotency_key is None:
            return await self.add(PaymentOrder(**values))
        order = await self._insert_unless_key_exists(values)
        if order is not None:
            order.record_event(_created(order))
            return self._see(order)
        existing = await self._by_idempotency_key(idempotency_key)
        if existing is None:
            # The conflicting order vanished between the two statements.
            raise Conflict("idempotent creation raced with a deletion; retry")
        if any(getattr(existing, f) != values[f] for f in _REPLAYED_FIELDS):
            raise IdempotencyKeyReused("this idempotency key belongs to a different order")
        return self._see(existing)

    async def transition(
        self, order_id: uuid.UUID, status: str, *, expected_version: int | None = None
    ) -> PaymentOrder:
        """Move an order to ``status`` if the lifecycle allows it; raise the event.

        The UPDATE carries ``WHERE version = <version read>``: if another
        transaction changed the order since it was read, nothing matches and the
        change is refused, so of two concurrent transitions exactly one wins.

        Raises:
            NotFound: no such order in this tenant.
            InvalidTransition: the lifecycle does not allow the move.
            InvalidData: ``status`` is not a known status.
            Conflict: ``expected_version`` is stale, or the order changed concurrently.
        """
        order = await self.get(order_id)
        if expected_version is not None and order.version != expected_version:
            raise Conflict(f"PaymentOrder {order_id} was changed (stale version)")
        old = order.status
        order.status = check_transition(old, status).value
        await self._flush()
        order.record_event(
            PaymentOrderStatusChanged(
                aggregate_id=str(order.id), old_status=old, new_status=order.status
            )
        )
        return order

    async def update(
        self, id_: uuid.UUID, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> PaymentOrder:
        """Apply ``changes`` (not the status) to one order, amount and currency checked.

        Raises:
            NotFound: no such order in this tenant.
            Conflict: the version does not match (a stale update).
            InvalidData: a change names the status or an unknown column, or a value is refused.
        """
        checked = checked_values(changes, ORDER_CHECKS)
        return await super().update(id_, checked, expected_version=expected_version)

    async def update_where(
        self, spec: Specification[PaymentOrder], changes: Mapping[str, Any]
    ) -> int:
        """Apply ``changes`` to every matching order; return the count.

        Raises:
            InvalidData: a change names the status or an unknown column, or a value is refused.
        """
        return await super().update_where(spec, checked_values(changes, ORDER_CHECKS))

    async def totals_by_status_and_currency(
        self, spec: Specification[PaymentOrder] | None = None
    ) -> builtins.list[OrderTotal]:
        """Return order count and summed amount per (status, currency), in one GROUP BY."""
        statement = totals_statement()
        if spec is not None:
            statement = statement.where(spec.to_clause())
        return totals_from(await self._execute(statement))

    async def revenue_per_day(
        self, currency: str, start: date, end: date
    ) -> builtins.list[DailyRevenue]:
        """Return paid revenue per UTC day from ``start`` to ``end`` inclusive, in ``currency``.

        Every day of the range is present, with zero when nothing was paid, so
        callers can chart it directly. An order counts on the day it was created
        (the schema keeps no payment time) and only while its status is ``paid``:
        refunded orders drop out.

        Raises:
            InvalidData: a malformed currency, ``end`` before ``start``, or a range too long.
        """
        statement = revenue_statement(normalize_currency(currency), start, end)
        return revenue_from(await self._execute(statement), start, end)

    def _check_changes(self, changes: Mapping[str, Any]) -> None:
        if "status" in changes:
            raise InvalidData("change a payment order's status with transition()")
        super()._check_changes(changes)

    async def _insert_unless_key_exists(self, values: Mapping[str, Any]) -> PaymentOrder | None:
        row = {"org_id": session_tenant(self.session.sync_session), "id": uuid.uuid4(), **values}
        insert = (
            pg_insert(PaymentOrder)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["org_id", "idempotency_key"])
            .returning(PaymentOrder)
        )
        statement = select(PaymentOrder).from_statement(insert)
        order: PaymentOrder | None = (await self._execute(statement)).scalars().first()
        return order

    async def _by_idempotency_key(self, key: str) -> PaymentOrder | None:
        statement = (
            select(PaymentOrder)
            .where(PaymentOrder.idempotency_key == key)
            .execution_options(populate_existing=True)
        )
        order: PaymentOrder | None = (await self._execute(statement)).scalars().first()
        return order


def _created(order: PaymentOrder) -> PaymentOrderCreated:
    return PaymentOrderCreated(
        aggregate_id=str(order.id),
        customer_id=order.customer_id,
        amount=order.amount,
        currency=order.currency,
        payment_link_id=order.payment_link_id,
        agent_id=order.agent_id,
    )
