"""Chain-wide jobs run as tenancy_chain; the app can no longer list a chain's tenants.

``unsettled_wallet_tenants(chain, from_block)`` names every organization with
unsettled transactions on a chain. Executable by ``tenancy_app``, it let any
tenant's request enumerate the other tenants of a chain. Only the chain-wide
jobs need it, so it moves to their own login role, ``tenancy_chain`` (created by
``tenancy.schema.roles``: NOBYPASSRLS, owns nothing), together with the chain tables
the jobs keep, with the same narrow privileges 0003 gave the app: checkpoints
are never deleted, stored block hashes never updated. ``resolve_wallet`` is
granted to the chain role as well; the app keeps it (resolving a wallet from
``(chain, address)`` without a tenant is part of its contract).

The two indexes serve the resolver, which scanned the whole table: pending
transactions of a chain (a small partial index) and transactions of a chain
from a block on.

Revision ID: tenancy_0006
Revises: tenancy_0005
Create Date: 2026-11-26 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0006"
down_revision: str | Sequence[str] | None = "tenancy_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLE_FUNCTION = "public.unsettled_wallet_tenants(text, bigint)"
RESOLVE_WALLET = "public.resolve_wallet(text, text)"
#: (table, privileges): exactly what 0003 granted the app role.
CHAIN_TABLE_GRANTS = (
    ("chain_checkpoints", "SELECT, INSERT, UPDATE"),
    ("chain_blocks", "SELECT, INSERT, DELETE"),
)


def upgrade() -> None:
    roles = migration_roles()
    op.execute(f"REVOKE EXECUTE ON FUNCTION {SETTLE_FUNCTION} FROM {roles.app}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SETTLE_FUNCTION} TO {roles.chain}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {RESOLVE_WALLET} TO {roles.chain}")
    for table, privileges in CHAIN_TABLE_GRANTS:
        op.execute(f"REVOKE {privileges} ON {table} FROM {roles.app}")
        op.execute(f"GRANT {privileges} ON {table} TO {roles.chain}")
    op.create_index(
        "ix_wallet_transactions_chain_block_number",
        "wallet_transactions",
        ["chain", "block_number"],
        unique=False,
    )
    op.create_index(
        "ix_wallet_transactions_chain_pending",
        "wallet_transactions",
        ["chain"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    roles = migration_roles()
    op.drop_index("ix_wallet_transactions_chain_pending", table_name="wallet_transactions")
    op.drop_index("ix_wallet_transactions_chain_block_number", table_name="wallet_transactions")
    for table, privileges in reversed(CHAIN_TABLE_GRANTS):
        op.execute(f"REVOKE {privileges} ON {table} FROM {roles.chain}")
        op.execute(f"GRANT {privileges} ON {table} TO {roles.app}")
    op.execute(f"REVOKE EXECUTE ON FUNCTION {RESOLVE_WALLET} FROM {roles.chain}")
    op.execute(f"REVOKE EXECUTE ON FUNCTION {SETTLE_FUNCTION} FROM {roles.chain}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SETTLE_FUNCTION} TO {roles.app}")
