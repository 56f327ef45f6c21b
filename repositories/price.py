"""Prices: history per product and currency, one active at a time."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, select

from repositories.base import AsyncRepository
from repositories.currency import normalize_currency
from repositories.domain_events import PriceChanged
from repositories.lifecycle import AggregateUpdated
from repositories.models import Price, Product
from repositories.validation import (
    Check,
    amount_check,
    check_object,
    checked_values,
    require_amount,
)
from tenancy.errors import NotFound
from tenancy.schema.declarative import utcnow
from tenancy.specification import Specification

#: Price columns checked (and normalised) before any write reaches SQL; the CHECK
#: constraints ``unit_amount_non_negative`` and ``currency_iso4217`` stay behind them.
PRICE_CHECKS: Mapping[str, Check] = {
    "unit_amount": amount_check("unit_amount", minimum=0),
    "currency": normalize_currency,
}


class PriceRepository(AsyncRepository[Price, uuid.UUID]):
    """Storage of ``Price`` aggregates: adjustments keep the old rows as history."""

    model = Price
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "unit_amount": "unit_amount"}

    async def change_price(self, product_id: uuid.UUID, currency: str, unit_amount: int) -> Price:
        """Make ``unit_amount`` the active price of a product in ``currency``.

        The previous active price (if any) is deactivated in the same transaction,
        before the new row is inserted, so the partial unique index
        ``uq_prices_one_active`` holds at every statement. Raises ``PriceChanged``.

        Concurrent adjustments of the same product serialize on a lock of the
        product row, taken first. Locking only the active price row is not enough:
        there is none for a first price, and a waiter woken after the holder
        committed re-checks ``active`` on the deactivated row, finds no row, and
        would then collide with the holder's new price instead of replacing it.

        Raises:
            NotFound: the product does not exist in this tenant.
            InvalidData: the currency is not an active ISO 4217 code, or the
                amount is not a non-negative int.
        """
        code = normalize_currency(currency)
        unit_amount = require_amount(unit_amount, "unit_amount", minimum=0)
        await self._lock_product(product_id)
        # Re-read after the lock: a concurrent adjuster may have committed meanwhile,
        # and a copy already in this session's identity map would be stale.
        statement = self._active(product_id, code).execution_options(populate_existing=True)
        previous: Price | None = (await self._execute(statement)).scalars().first()
        if previous is not None:
            await self._deactivate(previous)
        price = await self.add(Price(product_id=product_id, currency=code, unit_amount=unit_amount))
        price.record_event(
            PriceChanged(
                aggregate_id=str(product_id),
                price_id=price.id,
                previous_price_id=previous.id if previous is not None else None,
                currency=code,
                unit_amount=unit_amount,
            )
        )
        return price

    async def add(self, obj: Price) -> Price:
        """Insert ``obj`` with its amount and currency checked (prefer ``change_price``).

        Raises:
            InvalidData: the amount or currency is refused (nothing is sent).
            Conflict: the product already has an active price in this currency.
        """
        check_object(obj, PRICE_CHECKS)
        return await super().add(obj)

    async def add_many(self, objs: Sequence[Price]) -> builtins.list[Price]:
        """Insert several prices with their amounts and currencies checked.

        Raises:
            InvalidData: an amount or currency is refused (before anything is sent).
        """
        for obj in objs:
            check_object(obj, PRICE_CHECKS)
        return await super().add_many(objs)

    async def update(
        self, id_: uuid.UUID, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Price:
        """Apply ``changes`` to one price, amount and currency checked.

        Raises:
            NotFound: no such price in this tenant.
            InvalidData: a change names an unknown column, or a value is refused.
        """
        checked = checked_values(changes, PRICE_CHECKS)
        return await super().update(id_, checked, expected_version=expected_version)

    async def update_where(self, spec: Specification[Price], changes: Mapping[str, Any]) -> int:
        """Apply ``changes`` to every matching price; return the count.

        Raises:
            InvalidData: a change names an unknown column, or a value is refused.
        """
        return await super().update_where(spec, checked_values(changes, PRICE_CHECKS))

    async def active_price(self, product_id: uuid.UUID, currency: str) -> Price | None:
        """Return the active price of a product in ``currency``, or ``None``.

        Raises:
            InvalidData: a malformed currency.
        """
        statement = self._active(product_id, normalize_currency(currency))
        price: Price | None = (await self._execute(statement)).scalars().first()
        return self._see(price) if price is not None else None

    async def get_active_price(self, product_id: uuid.UUID, currency: str) -> Price:
        """Return the active price of a product in ``currency``.

        Raises:
            NotFound: the product has no active price in that currency in this tenant.
            InvalidData: a malformed currency.
        """
        price = await self.active_price(product_id, currency)
        if price is None:
            raise NotFound(f"product {product_id} has no active {currency} price")
        return price

    async def active_prices(self, product_id: uuid.UUID) -> builtins.list[Price]:
        """Return the active prices of a product, one per currency, ordered by currency."""
        statement = (
            select(Price)
            .where(Price.product_id == product_id, Price.active.is_(True))
            .order_by(Price.currency)
        )
        return self._see_all((await self._execute(statement)).scalars().all())

    async def history(
        self, product_id: uuid.UUID, currency: str | None = None
    ) -> builtins.list[Price]:
        """Return every price a product has had, oldest first (optionally in one currency).

        Raises:
            InvalidData: a malformed currency.
        """
        statement = select(Price).where(Price.product_id == product_id)
        if currency is not None:
            statement = statement.where(Price.currency == normalize_currency(currency))
        statement = statement.order_by(Price.created_at, Price.id)
        return self._see_all((await self._execute(statement)).scalars().all())

    async def _deactivate(self, price: Price) -> None:
        # Flushed on its own, before the new row's INSERT, for the partial unique index.
        self._see(price)
        price.active = False
        price.deactivated_at = utcnow()
        await self._flush()
        changes = {"active": False, "deactivated_at": price.deactivated_at}
        price.record_event(self._event(AggregateUpdated, price.id, changes=changes))

    def _active(self, product_id: uuid.UUID, code: str) -> Select[Price]:
        return select(Price).where(
            Price.product_id == product_id, Price.currency == code, Price.active.is_(True)
        )

    async def _lock_product(self, product_id: uuid.UUID) -> None:
        # FOR NO KEY UPDATE: conflicts with other adjusters of this product, yet not
        # with the FOR KEY SHARE that inserting rows referencing the product takes.
        statement = (
            select(Product.id).where(Product.id == product_id).with_for_update(key_share=True)
        )
        if (await self._execute(statement)).scalar_one_or_none() is None:
            raise NotFound(f"Product {product_id} not found")
