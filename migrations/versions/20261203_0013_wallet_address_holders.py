"""Wallet address holders: one organization per family address, as a lookup Citus accepts.

Migration 0008 kept each ``(chain_family, address)`` with one organization while
any of its wallets exists through a gist exclusion on ``wallets`` (``org_id WITH
<>``). On Citus, where ``wallets`` is distributed by ``org_id``, an exclusion that
does not compare the distribution column with equality is refused. The rule now
lives in a lookup table, like the global keys of 0012:
``wallet_address_holders (chain_family, address, org_id)``, primary key
``(chain_family, address)``, and a ``UNIQUE (chain_family, address, org_id)`` that
every wallet references. So one organization holds a family address, its wallets
on several chains share the holder row, and no wallet exists without it. On Citus
the holders become a reference table, which a distributed table may reference.

The repositories write the holder row before a wallet (``ON CONFLICT`` on the
organization's own row does nothing; another organization's row is a unique
violation of the primary key) and delete it with the organization's last wallet
on that address. Existing wallets are copied into the holders before the
exclusion goes, and with it ``btree_gist``, which nothing else uses. The
downgrade restores both; the holders' primary key kept the exclusion's rule, so
the rows still satisfy it.

Revision ID: tenancy_0013
Revises: tenancy_0012
Create Date: 2026-12-03 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_policy import PGPolicy

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0013"
down_revision: str | Sequence[str] | None = "tenancy_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "wallet_address_holders"
EXCLUSION = "ex_wallets_family_address_one_org"
FOREIGN_KEY = "fk_wallets_chain_family_address_org_id_wallet_address_holders"
WALLETS_INDEX = "ix_wallets_org_id_chain_family_address"
KEY = ("chain_family", "address", "org_id")
#: One holder row per organization and family address, however many chains it uses.
BACKFILL = (
    "INSERT INTO wallet_address_holders (chain_family, address, org_id)"
    " SELECT DISTINCT chain_family, address, org_id FROM wallets"
)
#: What the app role does with a holder row (the repositories write it, then delete it).
APP_PRIVILEGES = "SELECT, INSERT, DELETE"
#: The tenant predicate without a sub-select: Citus refuses sub-queries in policies.
PREDICATE = "org_id = nullif(current_setting('app.org_id', true), '')::uuid"


def _policies() -> list[PGPolicy]:
    return [
        PGPolicy(
            schema="public",
            signature=name,
            on_entity=f"public.{TABLE}",
            definition=(
                f"AS {kind} FOR ALL TO public\n"
                f"    USING ({PREDICATE})\n    WITH CHECK ({PREDICATE})"
            ),
        )
        for name, kind in (("tenant_isolation", "PERMISSIVE"), ("tenant_guard", "RESTRICTIVE"))
    ]


def upgrade() -> None:
    roles = migration_roles()
    op.create_table(
        TABLE,
        sa.Column("chain_family", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        # On Citus this table is a reference table, which cannot reference the
        # distributed organizations: there the foreign key is left out, and the
        # organization's rows are deleted with it by the application.
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f(f"fk_{TABLE}_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chain_family", "address", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint(*KEY, name=op.f(f"uq_{TABLE}_chain_family_address_org_id")),
    )
    # The organization's cascade.
    op.create_index(op.f(f"ix_{TABLE}_org_id"), TABLE, ["org_id"])

    # FORCE RLS hides every row from the owner without a tenant: lift it for the copy.
    op.execute("ALTER TABLE wallets NO FORCE ROW LEVEL SECURITY")
    op.execute(BACKFILL)
    op.execute("ALTER TABLE wallets FORCE ROW LEVEL SECURITY")

    op.create_foreign_key(FOREIGN_KEY, "wallets", TABLE, list(KEY), list(KEY))
    # The exclusion's gist index found an organization's wallets on a family address;
    # this one does now, for the foreign key's check when a holder row is deleted.
    op.create_index(WALLETS_INDEX, "wallets", ["org_id", "chain_family", "address"])
    op.drop_constraint(EXCLUSION, "wallets")
    op.execute("DROP EXTENSION IF EXISTS btree_gist")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    # FORCE: the owner is subject to the policies too.
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    for policy in _policies():
        op.create_entity(policy)
    op.execute(f"GRANT {APP_PRIVILEGES} ON {TABLE} TO {roles.app}")


def downgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    # The holders' primary key kept one organization per family address: this holds.
    op.create_exclude_constraint(
        EXCLUSION,
        "wallets",
        ("chain_family", "="),
        ("address", "="),
        ("org_id", "<>"),
        using="gist",
    )
    op.drop_index(WALLETS_INDEX, table_name="wallets")
    op.drop_constraint(FOREIGN_KEY, "wallets", type_="foreignkey")
    for policy in reversed(_policies()):
        op.drop_entity(policy)
    op.drop_table(TABLE)
