"""Prices: history per product and currency, one active at a time."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Price
from repositories.base import AsyncRepository


class PriceRepository(AsyncRepository[Price, uuid.UUID]):
    """Storage of ``Price`` aggregates."""

    model = Price
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "unit_amount": "unit_amount"}
