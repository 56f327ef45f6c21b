"""Global keys as lookup tables: payment link tokens, wallet addresses, invitation tokens.

Citus refuses a unique key that leaves out the distribution column, and three
did: ``payment_links (token)``, ``wallets (chain, address)`` and
``memberships (invitation_token_hash)``. Each key now lives in a lookup table
whose primary key is the key (``payment_link_tokens``, ``wallet_addresses``,
``invitation_tokens``), with a ``UNIQUE (key..., org_id, row id)`` that the owning
table references. The owning table's primary key is ``(org_id, id)``, so no two
rows share a key and none exists without its lookup row; on Citus the lookups
become reference tables, which distributed tables may reference.

Existing rows are copied into the lookups before the old unique keys go. The
lookups are tenant tables like the others (RLS forced, the two tenant policies
in the unwrapped form Citus accepts); the app role may read, insert and delete
their rows. The resolvers read the lookup first, then the owning row by
``(org_id, id)``; ``tenancy_resolver`` reads the lookups' columns and no longer
the owning tables' keys, and ``accept_invitation`` deletes the lookup row of the
token it uses.

Revision ID: tenancy_0012
Revises: tenancy_0011
Create Date: 2026-12-03 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0012"
down_revision: str | Sequence[str] | None = "tenancy_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: lookup table -> (its key columns, its row id column, the owning table, the owner's
#: columns in the same order, the old unique constraint on the owner).
LOOKUPS = {
    "payment_link_tokens": (
        ("token",),
        "link_id",
        "payment_links",
        ("token", "org_id", "id"),
        "uq_payment_links_token",
    ),
    "wallet_addresses": (
        ("chain", "address"),
        "wallet_id",
        "wallets",
        ("chain", "address", "org_id", "id"),
        "uq_wallets_chain_address",
    ),
    "invitation_tokens": (
        ("token_hash",),
        "user_id",
        "memberships",
        ("invitation_token_hash", "org_id", "user_id"),
        "uq_memberships_invitation_token_hash",
    ),
}
FOREIGN_KEYS = {
    "payment_links": "fk_payment_links_token_org_id_id_payment_link_tokens",
    "wallets": "fk_wallets_chain_address_org_id_id_wallet_addresses",
    "memberships": "fk_memberships_invitation_token_hash_invitation_tokens",
}
#: Rows whose key is NULL have no lookup (a membership without an invitation).
BACKFILL = (
    "INSERT INTO payment_link_tokens (token, org_id, link_id)"
    " SELECT token, org_id, id FROM payment_links",
    "INSERT INTO wallet_addresses (chain, address, org_id, wallet_id)"
    " SELECT chain, address, org_id, id FROM wallets",
    "INSERT INTO invitation_tokens (token_hash, org_id, user_id)"
    " SELECT invitation_token_hash, org_id, user_id FROM memberships"
    " WHERE invitation_token_hash IS NOT NULL",
)
#: What the app role does with a lookup row (the repositories write it, then delete it).
APP_PRIVILEGES = "SELECT, INSERT, DELETE"
#: The resolvers read the lookups, and the owning rows by (org_id, id) only.
RESOLVER_GRANTS = (
    "GRANT SELECT (token, org_id, link_id) ON payment_link_tokens TO {resolver}",
    "GRANT SELECT (chain, address, org_id, wallet_id) ON wallet_addresses TO {resolver}",
    "GRANT SELECT (token_hash, org_id, user_id), DELETE ON invitation_tokens TO {resolver}",
)
RESOLVER_KEPT_OUT = (
    "REVOKE SELECT (token) ON payment_links FROM {resolver}",
    "REVOKE SELECT (chain, address) ON wallets FROM {resolver}",
)
#: The tenant predicate without a sub-select: Citus refuses sub-queries in policies.
PREDICATE = "org_id = nullif(current_setting('app.org_id', true), '')::uuid"


def _policies(table: str) -> list[PGPolicy]:
    return [
        PGPolicy(
            schema="public",
            signature=name,
            on_entity=f"public.{table}",
            definition=(
                f"AS {kind} FOR ALL TO public\n"
                f"    USING ({PREDICATE})\n    WITH CHECK ({PREDICATE})"
            ),
        )
        for name, kind in (("tenant_isolation", "PERMISSIVE"), ("tenant_guard", "RESTRICTIVE"))
    ]


def _create_lookup(table: str, key: tuple[sa.Column[str], ...], row_id: str) -> None:
    names = [column.name for column in key]
    op.create_table(
        table,
        *key,
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column(row_id, sa.UUID(), nullable=False),
        # On Citus this table is a reference table, which cannot reference the
        # distributed organizations: there the foreign key is left out, and the
        # organization's rows are deleted with it by the application.
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*names, name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(
            *names, "org_id", row_id, name=op.f(f"uq_{table}_{'_'.join(names)}_org_id_{row_id}")
        ),
    )
    op.create_index(op.f(f"ix_{table}_org_id_{row_id}"), table, ["org_id", row_id])


def upgrade() -> None:
    roles = migration_roles()
    _create_lookup(
        "payment_link_tokens",
        (sa.Column("token", sa.String(length=64), nullable=False),),
        "link_id",
    )
    _create_lookup(
        "wallet_addresses",
        (
            sa.Column("chain", sa.String(length=32), nullable=False),
            sa.Column("address", sa.String(length=64), nullable=False),
        ),
        "wallet_id",
    )
    _create_lookup(
        "invitation_tokens",
        (sa.Column("token_hash", sa.LargeBinary(), nullable=False),),
        "user_id",
    )
    # FORCE RLS hides every row from the owner without a tenant: lift it for the copy.
    owners = [owner for _key, _row_id, owner, _columns, _old in LOOKUPS.values()]
    for owner in owners:
        op.execute(f"ALTER TABLE {owner} NO FORCE ROW LEVEL SECURITY")
    for statement in BACKFILL:
        op.execute(statement)
    for owner in owners:
        op.execute(f"ALTER TABLE {owner} FORCE ROW LEVEL SECURITY")

    for table, (key, row_id, owner, columns, old) in LOOKUPS.items():
        op.create_foreign_key(
            FOREIGN_KEYS[owner], owner, table, list(columns), [*key, "org_id", row_id]
        )
        op.drop_constraint(old, owner, type_="unique")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        # FORCE: the owner is subject to the policies too.
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for policy in _policies(table):
            op.create_entity(policy)
        op.execute(f"GRANT {APP_PRIVILEGES} ON {table} TO {roles.app}")
    # The tenant's own look-up by token, which the global unique index served.
    op.create_index(op.f("ix_payment_links_org_id_token"), "payment_links", ["org_id", "token"])

    for grant in RESOLVER_GRANTS:
        op.execute(grant.format(resolver=roles.resolver))
    for revoke in RESOLVER_KEPT_OUT:
        op.execute(revoke.format(resolver=roles.resolver))
    # CREATE OR REPLACE keeps the owner (tenancy_resolver) and the EXECUTE grants.
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="resolve_payment_link(p_token text)",
            definition="returns TABLE(org_id uuid, payment_link_id uuid)\nLANGUAGE plpgsql STABLE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_org_id uuid;\n    v_link_id uuid;\nBEGIN\n    SELECT t.org_id, t.link_id INTO v_org_id, v_link_id\n    FROM public.payment_link_tokens AS t\n    WHERE t.token = p_token;\n    RETURN QUERY\n        SELECT l.org_id, l.id\n        FROM public.payment_links AS l\n        WHERE l.org_id = v_org_id AND l.id = v_link_id;\nEND\n$$",
        )
    )
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="resolve_wallet(p_chain text, p_address text)",
            definition="returns TABLE(org_id uuid, wallet_id uuid)\nLANGUAGE plpgsql STABLE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_org_id uuid;\n    v_wallet_id uuid;\nBEGIN\n    SELECT a.org_id, a.wallet_id INTO v_org_id, v_wallet_id\n    FROM public.wallet_addresses AS a\n    WHERE a.chain = p_chain AND a.address = lower(p_address);\n    RETURN QUERY\n        SELECT w.org_id, w.id\n        FROM public.wallets AS w\n        WHERE w.org_id = v_org_id AND w.id = v_wallet_id;\nEND\n$$",
        )
    )
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="accept_invitation(p_token text, p_user_id uuid)",
            definition="returns uuid\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_hash bytea := sha256(convert_to(p_token, 'UTF8'));\n    v_org_id uuid;\n    v_accepted uuid;\nBEGIN\n    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN\n        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';\n    END IF;\n    SELECT t.org_id INTO v_org_id\n    FROM public.invitation_tokens AS t\n    WHERE t.token_hash = v_hash AND t.user_id = p_user_id;\n    UPDATE public.memberships AS m\n    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL\n    WHERE m.org_id = v_org_id\n      AND m.user_id = p_user_id\n      AND m.invitation_token_hash = v_hash\n      AND m.status = 'pending'\n      AND m.invitation_expires_at > now()\n    RETURNING m.org_id INTO v_accepted;\n    IF v_accepted IS NOT NULL THEN\n        DELETE FROM public.invitation_tokens AS t WHERE t.token_hash = v_hash;\n    END IF;\n    RETURN v_accepted;\nEND\n$$",
        )
    )


def downgrade() -> None:
    roles = migration_roles()
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="accept_invitation(p_token text, p_user_id uuid)",
            definition="returns uuid\nLANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\nDECLARE\n    v_org_id uuid;\nBEGIN\n    IF nullif(current_setting('app.org_id', true), '') IS NOT NULL THEN\n        RAISE EXCEPTION 'accept_invitation runs without a tenant' USING ERRCODE = '42501';\n    END IF;\n    UPDATE public.memberships AS m\n    SET status = 'active', invitation_token_hash = NULL, invitation_expires_at = NULL\n    WHERE m.invitation_token_hash = sha256(convert_to(p_token, 'UTF8'))\n      AND m.user_id = p_user_id\n      AND m.status = 'pending'\n      AND m.invitation_expires_at > now()\n    RETURNING m.org_id INTO v_org_id;\n    RETURN v_org_id;\nEND\n$$",
        )
    )
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="resolve_wallet(p_chain text, p_address text)",
            definition="returns TABLE(org_id uuid, wallet_id uuid)\nLANGUAGE sql STABLE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\n    SELECT w.org_id, w.id\n    FROM public.wallets AS w\n    WHERE w.chain = p_chain AND w.address = lower(p_address)\n$$",
        )
    )
    op.replace_entity(
        PGFunction(
            schema="public",
            signature="resolve_payment_link(p_token text)",
            definition="returns TABLE(org_id uuid, payment_link_id uuid)\nLANGUAGE sql STABLE STRICT SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $$\n    SELECT l.org_id, l.id\n    FROM public.payment_links AS l\n    WHERE l.token = p_token\n$$",
        )
    )
    for revoke in reversed(RESOLVER_KEPT_OUT):
        grant = revoke.replace("REVOKE", "GRANT", 1).replace(" FROM ", " TO ")
        op.execute(grant.format(resolver=roles.resolver))

    op.drop_index(op.f("ix_payment_links_org_id_token"), table_name="payment_links")
    for table, (_key, _row_id, owner, columns, old) in reversed(LOOKUPS.items()):
        for policy in reversed(_policies(table)):
            op.drop_entity(policy)
        # The lookup's primary key kept these unique, so the old constraint holds.
        op.create_unique_constraint(old, owner, list(columns[:-2]))
        op.drop_constraint(FOREIGN_KEYS[owner], owner, type_="foreignkey")
        op.drop_table(table)
