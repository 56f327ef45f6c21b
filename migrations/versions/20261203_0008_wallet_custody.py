"""Wallet custody: an EVM address belongs to one organization on every EVM chain.

One key controls its address on every EVM chain, but only ``(chain, address)``
was unique: another organization could register the same address on another
chain (or on the same one after its holder deleted the row), collect its
deposits and ask for payouts signed with the holder's key. ``wallets`` now
carries its ``chain_family`` (``evm`` for every chain this library follows) and
an exclusion constraint keeps each ``(chain_family, address)`` with one
organization while any of its rows exists; the same organization may still hold
it on several chains. A gist exclusion needs ``btree_gist`` (a trusted
extension, like ``btree_gin`` in 0001). The upgrade fails if two organizations
already share an address: that is the takeover this closes, and an operator must
decide which of them proves control.

``resolve_wallet`` names the organization that holds an address. Only the
chain-wide jobs need it, so the app role loses it (0002 granted it, 0006 kept it):
a tenant's request can no longer ask who holds an address.

Revision ID: tenancy_0008
Revises: tenancy_0007
Create Date: 2026-12-03 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0008"
down_revision: str | Sequence[str] | None = "tenancy_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOLVE_WALLET = "public.resolve_wallet(text, text)"
EXCLUSION = "ex_wallets_family_address_one_org"


def upgrade() -> None:
    roles = migration_roles()
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.add_column(
        "wallets",
        sa.Column("chain_family", sa.String(length=16), server_default="evm", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_wallets_chain_family"), "wallets", "chain_family IN ('evm')"
    )
    op.create_exclude_constraint(
        EXCLUSION,
        "wallets",
        ("chain_family", "="),
        ("address", "="),
        ("org_id", "<>"),
        using="gist",
    )
    op.execute(f"REVOKE EXECUTE ON FUNCTION {RESOLVE_WALLET} FROM {roles.app}")


def downgrade() -> None:
    roles = migration_roles()
    op.execute(f"GRANT EXECUTE ON FUNCTION {RESOLVE_WALLET} TO {roles.app}")
    op.drop_constraint(EXCLUSION, "wallets")
    op.drop_constraint(op.f("ck_wallets_chain_family"), "wallets", type_="check")
    op.drop_column("wallets", "chain_family")
    op.execute("DROP EXTENSION IF EXISTS btree_gist")
