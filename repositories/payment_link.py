"""Payment links."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import PaymentLink
from repositories.base import AsyncRepository


class PaymentLinkRepository(AsyncRepository[PaymentLink, uuid.UUID]):
    """Storage of ``PaymentLink`` aggregates."""

    model = PaymentLink
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "expires_at": "expires_at"}
