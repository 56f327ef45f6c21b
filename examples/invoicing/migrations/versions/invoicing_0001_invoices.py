"""Invoices and their lines, tenant tables under the library's policies.

Revision ID: invoicing_0001
Revises:
Create Date: 2026-12-03 03:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenancy.schema.declarative import TENANT_SETTING_SQL
from tenancy.schema.tenant_table import disable_tenant_table, enable_tenant_table

# The service's own history: ids that cannot collide with the library's (tenancy_*).
revision: str = "invoicing_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("invoicing",)
depends_on: str | Sequence[str] | None = None


def _tenant_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text(TENANT_SETTING_SQL),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "invoices",
        *_tenant_columns(),
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'draft'"), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'issued', 'paid', 'void')", name=op.f("ck_invoices_status")
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_invoices_currency")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_invoices_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "customer_id"],
            ["customers.org_id", "customers.id"],
            name=op.f("fk_invoices_org_id_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("org_id", "number", name=op.f("uq_invoices_org_id_number")),
    )
    op.create_index(
        "ix_invoices_org_id_customer_id", "invoices", ["org_id", "customer_id"], unique=False
    )
    op.create_index(
        "ix_invoices_org_id_created_at", "invoices", ["org_id", "created_at"], unique=False
    )
    op.create_table(
        "invoice_lines",
        *_tenant_columns(),
        sa.Column("invoice_id", sa.UUID(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_invoice_lines_quantity")),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_invoice_lines_unit_amount")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_invoice_lines_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "invoice_id"],
            ["invoices.org_id", "invoices.id"],
            name=op.f("fk_invoice_lines_org_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_invoice_lines")),
    )
    op.create_index(
        "ix_invoice_lines_org_id_invoice_id",
        "invoice_lines",
        ["org_id", "invoice_id"],
        unique=False,
    )
    # RLS enabled and forced, the tenant policies, and the app role's grants.
    enable_tenant_table("invoices")
    enable_tenant_table("invoice_lines")


def downgrade() -> None:
    disable_tenant_table("invoice_lines")
    disable_tenant_table("invoices")
    op.drop_table("invoice_lines")
    op.drop_table("invoices")
