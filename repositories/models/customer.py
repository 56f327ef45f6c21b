"""Customers of an organization and their payment methods."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from repositories.models.enums import PaymentMethodType
from tenancy.schema.declarative import Base, TenantOwned, check_in, values


class Customer(TenantOwned, Base):
    """Someone who pays an organization; email is unique per organization only."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        # org_id first: two tenants may each have a customer with the same email.
        Index("uq_customers_org_id_email", "org_id", "email", unique=True),
        # The repositories' default order (created_at, id) within the tenant.
        Index("ix_customers_org_id_created_at", "org_id", "created_at", "id"),
    )

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class PaymentMethod(TenantOwned, Base):
    """A stored way for a customer to pay; at most one default per customer."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint(check_in("type", values(PaymentMethodType)), name="type"),
        ForeignKeyConstraint(
            ["org_id", "customer_id"], ["customers.org_id", "customers.id"], ondelete="CASCADE"
        ),
        Index("ix_payment_methods_org_id_customer_id", "org_id", "customer_id"),
        # The database, not the application, keeps "exactly one default".
        Index(
            "uq_payment_methods_one_default",
            "org_id",
            "customer_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    customer_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    last4: Mapped[str | None] = mapped_column(String(4))
    is_default: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
