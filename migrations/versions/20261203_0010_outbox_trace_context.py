"""Outbox trace context: the W3C traceparent of the transaction that wrote each event.

Filled by the column's default from the transaction-local ``tenancy.traceparent``
that a traced unit of work sets with its tenant; NULL otherwise. The relay sends
it as the ``traceparent`` header, so a consumer continues the producer's trace.

Revision ID: tenancy_0010
Revises: tenancy_0009
Create Date: 2026-12-03 04:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenancy_0010"
down_revision: str | Sequence[str] | None = "tenancy_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox_events",
        sa.Column(
            "trace_context",
            sa.String(length=55),
            server_default=sa.text("nullif(current_setting('tenancy.traceparent', true), '')"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("outbox_events", "trace_context")
