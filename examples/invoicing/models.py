"""The invoicing service's own tenant tables, on the library's declarative base.

A top-level ``models`` module, as FastAPI services usually have: the library
installs no package of that name, so there is nothing to collide with.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenancy import Base, TenantOwned
from tenancy.schema.declarative import check_in, values
from tenancy.schema.tenant_table import tenant_foreign_key


class InvoiceStatus(StrEnum):
    """Where an invoice is in its life."""

    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"


class Invoice(TenantOwned, Base):
    """An invoice to one of the organization's customers (the library's ``customers``)."""

    __tablename__ = "invoices"
    __table_args__ = (
        # (org_id, customer_id) -> customers(org_id, id): never another tenant's customer.
        tenant_foreign_key("customer_id", "customers"),
        UniqueConstraint("org_id", "number"),
        CheckConstraint(check_in("status", values(InvoiceStatus)), name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        Index("ix_invoices_org_id_customer_id", "org_id", "customer_id"),
        Index("ix_invoices_org_id_created_at", "org_id", "created_at"),
    )

    customer_id: Mapped[uuid.UUID]
    number: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(
        String(16), default=InvoiceStatus.DRAFT.value, server_default=text("'draft'")
    )


class InvoiceLine(TenantOwned, Base):
    """One line of an invoice: amounts in the currency's minor units."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        tenant_foreign_key("invoice_id", "invoices"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("unit_amount >= 0", name="unit_amount"),
        Index("ix_invoice_lines_org_id_invoice_id", "org_id", "invoice_id"),
    )

    invoice_id: Mapped[uuid.UUID]
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_amount: Mapped[int]
