"""Agents and their capabilities.

Capabilities are stored de-duplicated and sorted. Grant and revoke lock the
agent row before reading its capabilities, so two concurrent grants both land
(no lost update), and each raises an event naming only what actually changed.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Sequence
from typing import ClassVar

from sqlalchemy import select

from repositories.agent_specs import AgentSpecs, capability_set
from repositories.base import AsyncRepository
from repositories.domain_events import AgentCapabilityGranted, AgentCapabilityRevoked
from repositories.models import Agent, AgentStatus
from tenancy.errors import InvalidData, NotFound


class AgentRepository(AsyncRepository[Agent, uuid.UUID]):
    """Storage of ``Agent`` aggregates and their capability queries."""

    model = Agent
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "name": "name",
        "status": "status",
    }

    async def add(self, obj: Agent) -> Agent:
        """Insert ``obj`` with its capabilities de-duplicated and sorted.

        Raises:
            InvalidData: a capability name is blank or too long.
        """
        obj.capabilities = capability_set(obj.capabilities or ())
        return await super().add(obj)

    async def add_many(self, objs: Sequence[Agent]) -> builtins.list[Agent]:
        """Insert several agents with their capabilities de-duplicated and sorted."""
        for obj in objs:
            obj.capabilities = capability_set(obj.capabilities or ())
        return await super().add_many(objs)

    async def with_all_capabilities(self, capabilities: Iterable[str]) -> builtins.list[Agent]:
        """Return the agents holding every one of ``capabilities``."""
        return await self.list(AgentSpecs.has_all_capabilities(capabilities))

    async def with_any_capability(self, capabilities: Iterable[str]) -> builtins.list[Agent]:
        """Return the agents holding at least one of ``capabilities``."""
        return await self.list(AgentSpecs.has_any_capability(capabilities))

    async def by_status(self, *statuses: AgentStatus | str) -> builtins.list[Agent]:
        """Return the agents in one of ``statuses``.

        Raises:
            InvalidData: a status is unknown.
        """
        return await self.list(AgentSpecs.status_in(*statuses))

    async def by_role(self, role: str) -> builtins.list[Agent]:
        """Return the agents with ``role``."""
        return await self.list(AgentSpecs.role_is(role))

    async def grant(self, agent_id: uuid.UUID, capabilities: Iterable[str]) -> Agent:
        """Add ``capabilities`` to an agent; raise ``AgentCapabilityGranted`` for the new ones.

        Granting what the agent already holds changes nothing and raises no event.

        Raises:
            NotFound: no such agent in this tenant.
            InvalidData: no capability given, or a name is blank or too long.
        """
        wanted = _required(capabilities)
        agent = await self._lock(agent_id)
        held = set(agent.capabilities)
        added = [name for name in wanted if name not in held]
        if added:
            agent.capabilities = sorted(held.union(added))
            await self._flush()
            agent.record_event(
                AgentCapabilityGranted(aggregate_id=str(agent.id), capabilities=added)
            )
        return agent

    async def revoke(self, agent_id: uuid.UUID, capabilities: Iterable[str]) -> Agent:
        """Take ``capabilities`` from an agent; raise ``AgentCapabilityRevoked`` for those it had.

        Revoking what the agent does not hold changes nothing and raises no event.

        Raises:
            NotFound: no such agent in this tenant.
            InvalidData: no capability given, or a name is blank or too long.
        """
        unwanted = _required(capabilities)
        agent = await self._lock(agent_id)
        held = set(agent.capabilities)
        removed = [name for name in unwanted if name in held]
        if removed:
            agent.capabilities = sorted(held.difference(removed))
            await self._flush()
            agent.record_event(
                AgentCapabilityRevoked(aggregate_id=str(agent.id), capabilities=removed)
            )
        return agent

    async def _lock(self, agent_id: uuid.UUID) -> Agent:
        statement = (
            select(Agent)
            .where(Agent.id == agent_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        agent: Agent | None = (await self._execute(statement)).scalars().first()
        if agent is None:
            raise NotFound(f"Agent {agent_id} not found")
        return self._see(agent)


def _required(capabilities: Iterable[str]) -> builtins.list[str]:
    names = capability_set(capabilities)
    if not names:
        raise InvalidData("name at least one capability")
    return names
