"""Organizations (the tenants), users (global identities) and memberships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import TENANT_SETTING_SQL, Base, check_in, utcnow
from models.enums import MemberRole, OrganizationStatus, values


class Organization(Base):
    """A tenant; its ``id`` is the tenant id every other row carries as ``org_id``."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(check_in("status", values(OrganizationStatus)), name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text(TENANT_SETTING_SQL))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(20), default=OrganizationStatus.ACTIVE.value, server_default="active"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


class User(Base):
    """A person; global across organizations, visible in a tenant only as its member."""

    __tablename__ = "users"
    __table_args__ = (
        # Stored lower-case so that the unique constraint is case-insensitive.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("username = lower(username)", name="username_lowercase"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Never loaded with the row: the app role may not read it (migration 0004);
    # login reads it through the resolve_login() function only.
    password_hash: Mapped[str | None] = mapped_column(String(255), deferred=True)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


class Membership(Base):
    """A user's role in one organization."""

    __tablename__ = "memberships"
    __tenant_owned__ = True
    __table_args__ = (CheckConstraint(check_in("role", values(MemberRole)), name="role"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
        server_default=text(TENANT_SETTING_SQL),
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
