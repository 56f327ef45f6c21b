"""Customers and their payment methods."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Customer
from repositories.base import AsyncRepository


class CustomerRepository(AsyncRepository[Customer, uuid.UUID]):
    """Storage of ``Customer`` aggregates."""

    model = Customer
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "email": "email", "name": "name"}
    natural_key: ClassVar = ("email",)
