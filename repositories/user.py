"""Users: global identities, visible in a tenant as its members."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import User
from repositories.base import AsyncRepository


class UserRepository(AsyncRepository[User, uuid.UUID]):
    """Storage of ``User`` aggregates."""

    model = User
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "email": "email",
        "username": "username",
    }
