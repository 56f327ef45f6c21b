"""Indexes for the repositories' default list order: (org_id, created_at, id).

Revision ID: tenancy_0005
Revises: tenancy_0004
Create Date: 2026-11-26 08:10:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "tenancy_0005"
down_revision: str | Sequence[str] | None = "tenancy_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("customers", "agents", "products", "payment_links", "wallets")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_org_id_created_at", table, ["org_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_org_id_created_at", table_name=table)
