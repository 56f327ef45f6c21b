"""Payment orders."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import PaymentOrder
from repositories.base import AsyncRepository


class PaymentOrderRepository(AsyncRepository[PaymentOrder, uuid.UUID]):
    """Storage of ``PaymentOrder`` aggregates."""

    model = PaymentOrder
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "amount": "amount",
        "updated_at": "updated_at",
    }
