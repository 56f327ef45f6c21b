"""Users: the app role reads no password hash and changes no identity column.

A user is global; any organization the user belongs to reaches the row. So the
app role may read only the public columns (login reads the hash through the
resolve_login() function), and may change only the display name and the active
flag: an organization must not be able to take over an account that other
organizations share, by rewriting its email, username or password hash.

Revision ID: tenancy_0004
Revises: tenancy_0003
Create Date: 2026-11-26 08:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0004"
down_revision: str | Sequence[str] | None = "tenancy_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_COLUMNS = "id, email, username, display_name, is_active, created_at"


def upgrade() -> None:
    roles = migration_roles()
    op.execute(f"REVOKE SELECT, UPDATE ON users FROM {roles.app}")
    op.execute(f"GRANT SELECT ({PUBLIC_COLUMNS}) ON users TO {roles.app}")
    op.execute(f"GRANT UPDATE (display_name, is_active) ON users TO {roles.app}")


def downgrade() -> None:
    roles = migration_roles()
    op.execute(f"REVOKE SELECT ({PUBLIC_COLUMNS}) ON users FROM {roles.app}")
    op.execute(f"REVOKE UPDATE (display_name, is_active) ON users FROM {roles.app}")
    op.execute(f"GRANT SELECT, UPDATE ON users TO {roles.app}")
