"""Payment links and payment orders."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from repositories.models.enums import PaymentLinkStatus, PaymentOrderStatus
from tenancy.schema.declarative import Base, TenantOwned, check_in, utcnow, values


class PaymentLink(TenantOwned, Base):
    """A shareable link to pay a price; found by its random public token.

    The token is a random global secret (not a tenant natural key). It is unique
    across tenants through its lookup row (``payment_link_tokens``), which the
    link references and the repository writes first.
    """

    __tablename__ = "payment_links"
    __table_args__ = (
        CheckConstraint(check_in("status", values(PaymentLinkStatus)), name="status"),
        CheckConstraint("max_uses IS NULL OR max_uses > 0", name="max_uses_positive"),
        CheckConstraint("max_uses IS NULL OR use_count <= max_uses", name="use_count_bounded"),
        CheckConstraint("use_count >= 0", name="use_count_non_negative"),
        ForeignKeyConstraint(
            ["token", "org_id", "id"],
            [
                "payment_link_tokens.token",
                "payment_link_tokens.org_id",
                "payment_link_tokens.link_id",
            ],
        ),
        ForeignKeyConstraint(["org_id", "price_id"], ["prices.org_id", "prices.id"]),
        Index("ix_payment_links_org_id_price_id", "org_id", "price_id"),
        Index("ix_payment_links_org_id_status_expires_at", "org_id", "status", "expires_at"),
        Index("ix_payment_links_org_id_created_at", "org_id", "created_at", "id"),
        # The tenant's own look-up by token (get_by_token); the global one is the lookup's key.
        Index("ix_payment_links_org_id_token", "org_id", "token"),
    )

    price_id: Mapped[uuid.UUID]
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(20), default=PaymentLinkStatus.ACTIVE.value, server_default="active"
    )
    expires_at: Mapped[datetime | None]
    max_uses: Mapped[int | None] = mapped_column(Integer)
    use_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PaymentOrder(TenantOwned, Base):
    """A request to be paid, moving through the order lifecycle; optimistic-locked."""

    __tablename__ = "payment_orders"
    __table_args__ = (
        CheckConstraint(check_in("status", values(PaymentOrderStatus)), name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint(
            "org_id", "idempotency_key", name="uq_payment_orders_org_id_idempotency_key"
        ),
        ForeignKeyConstraint(["org_id", "customer_id"], ["customers.org_id", "customers.id"]),
        ForeignKeyConstraint(
            ["org_id", "payment_link_id"], ["payment_links.org_id", "payment_links.id"]
        ),
        ForeignKeyConstraint(["org_id", "agent_id"], ["agents.org_id", "agents.id"]),
        Index("ix_payment_orders_org_id_created_at", "org_id", "created_at", "id"),
        Index("ix_payment_orders_org_id_status", "org_id", "status"),
        Index("ix_payment_orders_org_id_customer_id", "org_id", "customer_id"),
        Index("ix_payment_orders_org_id_payment_link_id", "org_id", "payment_link_id"),
        Index("ix_payment_orders_org_id_agent_id", "org_id", "agent_id"),
    )

    customer_id: Mapped[uuid.UUID]
    payment_link_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(
        String(20), default=PaymentOrderStatus.PENDING.value, server_default="pending"
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=text("now()")
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}
