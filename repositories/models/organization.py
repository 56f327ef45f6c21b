"""Organizations (the tenants), users (global identities) and memberships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from repositories.models.enums import MemberRole, MembershipStatus, OrganizationStatus
from tenancy.schema.declarative import TENANT_SETTING_SQL, Base, check_in, utcnow, values


class Organization(Base):
    """A tenant; its ``id`` is the tenant id every other row carries as ``org_id``."""

    __tablename__ = "organizations"
    __tenant_root__ = True
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
        Index("ix_users_member_of", "member_of", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Never loaded with the row: the app role may neither read nor write it (migrations
    # 0004, 0009); register_user() writes it, resolve_login() reads it, both tenant-less.
    password_hash: Mapped[str | None] = mapped_column(String(255), deferred=True)
    # Global: login refuses an inactive user everywhere, so no tenant may write it
    # (an identity admin does); per-organization suspension is Membership.status. No
    # Python default: inserts must leave the column out to stay within the grants.
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    # The organizations where the user is an accepted member: what the row policy
    # compares with the tenant (migration 0014). Never loaded, never written by the
    # app role (it can do neither); the membership functions keep it.
    member_of: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid()), deferred=True, server_default=text("'{}'::uuid[]")
    )


class Membership(Base):
    """A user's role and standing in one organization.

    ``pending`` is an invitation: it shows the tenant nothing of the user until the
    user accepts it (``accept_invitation``); ``suspended`` keeps the user visible but
    refused by the middleware, in this organization only.
    """

    __tablename__ = "memberships"
    __tenant_owned__ = True
    __table_args__ = (
        CheckConstraint(check_in("role", values(MemberRole)), name="role"),
        CheckConstraint(check_in("status", values(MembershipStatus)), name="status"),
        # The invitation's lookup row keeps its token unique across tenants. MATCH
        # SIMPLE (the default): a membership without an invitation is not checked.
        ForeignKeyConstraint(
            ["invitation_token_hash", "org_id", "user_id"],
            [
                "invitation_tokens.token_hash",
                "invitation_tokens.org_id",
                "invitation_tokens.user_id",
            ],
            name="fk_memberships_invitation_token_hash_invitation_tokens",
        ),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
        server_default=text(TENANT_SETTING_SQL),
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20))
    # Defaults to active: the database admits that only for a user created by the same
    # transaction (the consent_insert policy); any other insert must say pending.
    status: Mapped[str] = mapped_column(
        String(20), default=MembershipStatus.ACTIVE.value, server_default="active"
    )
    # SHA-256 of the invitation token (the token itself is never stored); cleared on accept.
    invitation_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    invitation_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
