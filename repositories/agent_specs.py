"""Reusable specifications over agents: capabilities, status, role.

Capability criteria use the array operators ``@>`` (has all) and ``&&`` (has
any), the operators the GIN index ``ix_agents_org_id_capabilities`` serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from repositories.models import Agent, AgentStatus
from repositories.validation import parse_member
from tenancy.errors import InvalidData
from tenancy.specification import Specification

#: Longest capability name the column holds (``varchar(64)[]``).
MAX_CAPABILITY_LENGTH = 64


def capability_set(capabilities: Iterable[str]) -> list[str]:
    """Return ``capabilities`` stripped, de-duplicated and sorted.

    Raises:
        InvalidData: a capability is blank, too long, or a bare string was passed.
    """
    if isinstance(capabilities, str):
        # A str is an iterable of characters; that is never what the caller meant.
        raise InvalidData("capabilities must be a collection of names, not one string")
    names = {name.strip() for name in capabilities}
    if "" in names:
        raise InvalidData("a capability name must not be blank")
    if any(len(name) > MAX_CAPABILITY_LENGTH for name in names):
        raise InvalidData(f"a capability name has at most {MAX_CAPABILITY_LENGTH} characters")
    return sorted(names)


def parse_status(status: AgentStatus | str) -> AgentStatus:
    """Return ``status`` as an ``AgentStatus``.

    Raises:
        InvalidData: ``status`` is not an agent status.
    """
    return parse_member(AgentStatus, status, what="agent status", constraint="ck_agents_status")


class AgentSpecs:
    """Constructors of agent specifications; combine them with ``&``, ``|`` and ``~``."""

    @staticmethod
    def has_all_capabilities(capabilities: Iterable[str]) -> Specification[Agent]:
        """Agents holding every one of ``capabilities`` (all agents for an empty set).

        Raises:
            InvalidData: a capability name is blank or too long.
        """
        return Specification(Agent.capabilities.contains(capability_set(capabilities)))

    @staticmethod
    def has_any_capability(capabilities: Iterable[str]) -> Specification[Agent]:
        """Agents holding at least one of ``capabilities`` (none for an empty set).

        Raises:
            InvalidData: a capability name is blank or too long.
        """
        return Specification(Agent.capabilities.overlap(capability_set(capabilities)))

    @staticmethod
    def status_in(*statuses: AgentStatus | str) -> Specification[Agent]:
        """Agents in one of ``statuses``.

        Raises:
            InvalidData: a status is unknown.
        """
        return Specification(Agent.status.in_([parse_status(s).value for s in statuses]))

    @staticmethod
    def role_is(role: str) -> Specification[Agent]:
        """Agents with exactly ``role``."""
        return Specification(Agent.role == role.strip())
