"""Outbox dead letters: a ``discarded`` status and an index of dead rows per aggregate.

A dead event now stops its aggregate: the relay's claim skips every aggregate
that has a dead row, until an operator re-queues or discards it. The claim runs
that lookup on every pass, so dead rows get a partial index of their own (they
are few; the table around them is large).

Revision ID: tenancy_0007
Revises: tenancy_0006
Create Date: 2026-12-02 23:45:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenancy_0007"
down_revision: str | Sequence[str] | None = "tenancy_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_outbox_events_status"), "outbox_events", type_="check")
    op.create_check_constraint(
        op.f("ck_outbox_events_status"),
        "outbox_events",
        "status IN ('pending', 'published', 'dead', 'discarded')",
    )
    op.create_index(
        "ix_outbox_events_dead",
        "outbox_events",
        ["org_id", "aggregate_type", "aggregate_id"],
        unique=False,
        postgresql_where=sa.text("status = 'dead'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_events_dead", table_name="outbox_events")
    # The old schema has no "discarded": such a row is nearest to dead (never published).
    op.execute("UPDATE outbox_events SET status = 'dead' WHERE status = 'discarded'")
    op.drop_constraint(op.f("ck_outbox_events_status"), "outbox_events", type_="check")
    op.create_check_constraint(
        op.f("ck_outbox_events_status"),
        "outbox_events",
        "status IN ('pending', 'published', 'dead')",
    )
