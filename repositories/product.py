"""Products."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Product
from repositories.base import AsyncRepository


class ProductRepository(AsyncRepository[Product, uuid.UUID]):
    """Storage of ``Product`` aggregates."""

    model = Product
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "name": "name"}
