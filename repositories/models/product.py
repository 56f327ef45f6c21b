"""Products and their prices."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.schema.declarative import Base, TenantOwned


class Product(TenantOwned, Base):
    """Something an organization sells."""

    __tablename__ = "products"
    __table_args__ = (
        Index("uq_products_org_id_sku", "org_id", "sku", unique=True),
        Index("ix_products_org_id_created_at", "org_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))


class Price(TenantOwned, Base):
    """An amount for a product in one currency; changes create a new row.

    At most one active price per product and currency, enforced by a partial
    unique index, so a price change deactivates the old row in the same transaction.
    """

    __tablename__ = "prices"
    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint("unit_amount >= 0", name="unit_amount_non_negative"),
        ForeignKeyConstraint(
            ["org_id", "product_id"], ["products.org_id", "products.id"], ondelete="CASCADE"
        ),
        Index("ix_prices_org_id_product_id", "org_id", "product_id", "created_at"),
        Index(
            "uq_prices_one_active",
            "org_id",
            "product_id",
            "currency",
            unique=True,
            postgresql_where=text("active"),
        ),
    )

    product_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(String(3))
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    deactivated_at: Mapped[datetime | None]
