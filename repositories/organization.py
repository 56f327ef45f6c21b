"""The organization (tenant) and its memberships."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Organization
from repositories.base import AsyncRepository


class OrganizationRepository(AsyncRepository[Organization, uuid.UUID]):
    """Storage of ``Organization`` aggregates."""

    model = Organization
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "name": "name"}
