"""Agents: autonomous actors of an organization, with capabilities."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from repositories.models.enums import AgentStatus
from tenancy.schema.declarative import Base, TenantOwned, check_in, values


class Agent(TenantOwned, Base):
    """An AI agent acting for an organization, limited by its capabilities."""

    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(check_in("status", values(AgentStatus)), name="status"),
        # btree_gin lets org_id lead a GIN index over the capability array.
        Index("ix_agents_org_id_capabilities", "org_id", "capabilities", postgresql_using="gin"),
        Index("ix_agents_org_id_status", "org_id", "status"),
        Index("ix_agents_org_id_role", "org_id", "role"),
        Index("ix_agents_org_id_created_at", "org_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(64), default="assistant", server_default="assistant")
    status: Mapped[str] = mapped_column(
        String(20), default=AgentStatus.ACTIVE.value, server_default="active"
    )
    capabilities: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), default=list, server_default=text("'{}'::varchar[]")
    )
