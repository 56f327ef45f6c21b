"""Agents and their capabilities."""

from __future__ import annotations

import uuid
from typing import ClassVar

from models import Agent
from repositories.base import AsyncRepository


class AgentRepository(AsyncRepository[Agent, uuid.UUID]):
    """Storage of ``Agent`` aggregates."""

    model = Agent
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "name": "name",
        "status": "status",
    }
