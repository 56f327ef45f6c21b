"""Wallets and their on-chain transactions (persistence)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Wallet
from repositories.base import AsyncRepository


class WalletRepository(AsyncRepository[Wallet, uuid.UUID]):
    """Storage of ``Wallet`` aggregates."""

    model = Wallet
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id"}
