"""Sign-up on Citus: the resolver may insert every column of ``users``.

``register_user`` (run by the resolver role) names three columns and lets the
others take their defaults. PostgreSQL checks the insert privilege of the named
columns only; Citus, though, sends each node an ``INSERT`` that lists every
column with its default filled in, and the node checks all of them, so on a
coordinator sign-up failed with "permission denied for table users_…". The
resolver gets the defaulted columns too. Nothing it can do changes: it is the
role that writes ``member_of`` and credentials already, and only its reviewed
definer functions run as it.

Revision ID: tenancy_0015
Revises: tenancy_0014
Create Date: 2026-12-04 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0015"
down_revision: str | Sequence[str] | None = "tenancy_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The columns of ``users`` with a default, which Citus lists in every insert.
DEFAULTED_COLUMNS = "id, display_name, is_active, created_at, member_of"


def upgrade() -> None:
    resolver = migration_roles().resolver
    op.execute(f"GRANT INSERT ({DEFAULTED_COLUMNS}) ON users TO {resolver}")


def downgrade() -> None:
    resolver = migration_roles().resolver
    op.execute(f"REVOKE INSERT ({DEFAULTED_COLUMNS}) ON users FROM {resolver}")
