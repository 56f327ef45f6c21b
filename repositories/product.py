"""Products: what an organization sells, found by id or by SKU."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import select

from repositories.base import AsyncRepository
from repositories.models import Product
from tenancy.errors import NotFound


class ProductRepository(AsyncRepository[Product, uuid.UUID]):
    """Storage of ``Product`` aggregates; CRUD comes from the base repository.

    The SKU is the natural key (unique per organization), so ``upsert`` conflicts on it.
    SKUs are compared exactly: they are codes, not names, and case may matter.
    """

    model = Product
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "name": "name", "sku": "sku"}
    natural_key: ClassVar = ("sku",)

    async def find_by_sku(self, sku: str) -> Product | None:
        """Return the product with ``sku`` in the current tenant, or ``None``."""
        result = await self._execute(select(Product).where(Product.sku == sku))
        product: Product | None = result.scalars().first()
        return self._see(product) if product is not None else None

    async def get_by_sku(self, sku: str) -> Product:
        """Return the product with ``sku`` in the current tenant.

        Raises:
            NotFound: no product of this tenant has that SKU.
        """
        product = await self.find_by_sku(sku)
        if product is None:
            raise NotFound(f"no product with SKU {sku!r}")
        return product
