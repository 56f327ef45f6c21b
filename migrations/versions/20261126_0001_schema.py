"""Schema: tables, row-level security switched on and forced, grants.

Revision ID: tenancy_0001
Revises:
Create Date: 2026-11-26 07:20:46.779145+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenancy.schema.migration import migration_roles

revision: str = "tenancy_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("tenancy",)
depends_on: str | Sequence[str] | None = None


# Tables under row-level security; every one is also FORCEd so that the owner
# role is subject to it too. `users` is global but visible per tenant by membership.
RLS_TABLES = (
    "organizations",
    "users",
    "memberships",
    "agents",
    "customers",
    "payment_methods",
    "products",
    "prices",
    "payment_links",
    "payment_orders",
    "wallets",
    "wallet_transactions",
    "outbox_events",
)
APP_DML = (*RLS_TABLES[2:-1], "organizations")


def upgrade() -> None:
    roles = migration_roles()
    # btree_gin lets org_id lead the GIN index over agent capabilities.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_table(
        "organizations",
        sa.Column(
            "id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_organizations_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "outbox_events",
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("aggregate_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'published', 'dead')", name=op.f("ck_outbox_events_status")
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_outbox_events")),
    )
    op.create_index(
        "ix_outbox_events_org_id_occurred_at",
        "outbox_events",
        ["org_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        "ix_outbox_events_pending",
        "outbox_events",
        ["available_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.CheckConstraint("username = lower(username)", name=op.f("ck_users_username_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "agents",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=64), server_default="assistant", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column(
            "capabilities",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'disabled')", name=op.f("ck_agents_status")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_agents_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_agents")),
    )
    op.create_index(
        "ix_agents_org_id_capabilities",
        "agents",
        ["org_id", "capabilities"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index("ix_agents_org_id_role", "agents", ["org_id", "role"], unique=False)
    op.create_index("ix_agents_org_id_status", "agents", ["org_id", "status"], unique=False)
    op.create_table(
        "customers",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_customers_email_lowercase")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_customers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_customers")),
    )
    op.create_index("uq_customers_org_id_email", "customers", ["org_id", "email"], unique=True)
    op.create_table(
        "memberships",
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'member', 'viewer')", name=op.f("ck_memberships_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_memberships_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "user_id", name=op.f("pk_memberships")),
    )
    op.create_table(
        "products",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_products_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_products")),
    )
    op.create_index("uq_products_org_id_sku", "products", ["org_id", "sku"], unique=True)
    op.create_table(
        "payment_methods",
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=200), server_default="", nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "type IN ('card', 'bank_account', 'crypto_wallet')",
            name=op.f("ck_payment_methods_type"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "customer_id"],
            ["customers.org_id", "customers.id"],
            name=op.f("fk_payment_methods_org_id_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_payment_methods_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_payment_methods")),
    )
    op.create_index(
        "ix_payment_methods_org_id_customer_id",
        "payment_methods",
        ["org_id", "customer_id"],
        unique=False,
    )
    op.create_index(
        "uq_payment_methods_one_default",
        "payment_methods",
        ["org_id", "customer_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "prices",
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_prices_currency_iso4217")),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_prices_unit_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["org_id", "product_id"],
            ["products.org_id", "products.id"],
            name=op.f("fk_prices_org_id_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_prices_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_prices")),
    )
    op.create_index(
        "ix_prices_org_id_product_id",
        "prices",
        ["org_id", "product_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_prices_one_active",
        "prices",
        ["org_id", "product_id", "currency"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "wallets",
        sa.Column("agent_id", sa.UUID(), nullable=True),
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("address = lower(address)", name=op.f("ck_wallets_address_lowercase")),
        sa.ForeignKeyConstraint(
            ["org_id", "agent_id"],
            ["agents.org_id", "agents.id"],
            name=op.f("fk_wallets_org_id_agent_id_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_wallets_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_wallets")),
        sa.UniqueConstraint("chain", "address", name="uq_wallets_chain_address"),
    )
    op.create_index("ix_wallets_org_id_agent_id", "wallets", ["org_id", "agent_id"], unique=False)
    op.create_index("ix_wallets_org_id_chain", "wallets", ["org_id", "chain"], unique=False)
    op.create_table(
        "payment_links",
        sa.Column("price_id", sa.UUID(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("use_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'expired')", name=op.f("ck_payment_links_status")
        ),
        sa.CheckConstraint(
            "max_uses IS NULL OR max_uses > 0", name=op.f("ck_payment_links_max_uses_positive")
        ),
        sa.CheckConstraint(
            "max_uses IS NULL OR use_count <= max_uses",
            name=op.f("ck_payment_links_use_count_bounded"),
        ),
        sa.CheckConstraint("use_count >= 0", name=op.f("ck_payment_links_use_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["org_id", "price_id"],
            ["prices.org_id", "prices.id"],
            name=op.f("fk_payment_links_org_id_price_id_prices"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_payment_links_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_payment_links")),
        sa.UniqueConstraint("token", name="uq_payment_links_token"),
    )
    op.create_index(
        "ix_payment_links_org_id_price_id", "payment_links", ["org_id", "price_id"], unique=False
    )
    op.create_index(
        "ix_payment_links_org_id_status_expires_at",
        "payment_links",
        ["org_id", "status", "expires_at"],
        unique=False,
    )
    op.create_table(
        "wallet_transactions",
        sa.Column("wallet_id", sa.UUID(), nullable=False),
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("asset", sa.String(length=64), server_default="native", nullable=False),
        sa.Column("amount", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("counterparty", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("confirmations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "direction IN ('in', 'out')", name=op.f("ck_wallet_transactions_direction")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed', 'dropped')",
            name=op.f("ck_wallet_transactions_status"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_wallet_transactions_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["org_id", "wallet_id"],
            ["wallets.org_id", "wallets.id"],
            name=op.f("fk_wallet_transactions_org_id_wallet_id_wallets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_wallet_transactions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_wallet_transactions")),
        sa.UniqueConstraint(
            "org_id",
            "chain",
            "tx_hash",
            "log_index",
            "direction",
            name="uq_wallet_transactions_chain_tx",
        ),
    )
    op.create_index(
        "ix_wallet_transactions_org_id_wallet_id",
        "wallet_transactions",
        ["org_id", "wallet_id", "status"],
        unique=False,
    )
    op.create_table(
        "payment_orders",
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("payment_link_id", sa.UUID(), nullable=True),
        sa.Column("agent_id", sa.UUID(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "org_id",
            sa.UUID(),
            server_default=sa.text("nullif(current_setting('app.org_id', true), '')::uuid"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_payment_orders_currency_iso4217")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'authorized', 'paid', 'refunded', 'failed', 'cancelled')",
            name=op.f("ck_payment_orders_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_orders_amount_positive")),
        sa.ForeignKeyConstraint(
            ["org_id", "agent_id"],
            ["agents.org_id", "agents.id"],
            name=op.f("fk_payment_orders_org_id_agent_id_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "customer_id"],
            ["customers.org_id", "customers.id"],
            name=op.f("fk_payment_orders_org_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "payment_link_id"],
            ["payment_links.org_id", "payment_links.id"],
            name=op.f("fk_payment_orders_org_id_payment_link_id_payment_links"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_payment_orders_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_payment_orders")),
        sa.UniqueConstraint(
            "org_id", "idempotency_key", name="uq_payment_orders_org_id_idempotency_key"
        ),
    )
    op.create_index(
        "ix_payment_orders_org_id_agent_id", "payment_orders", ["org_id", "agent_id"], unique=False
    )
    op.create_index(
        "ix_payment_orders_org_id_created_at",
        "payment_orders",
        ["org_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_payment_orders_org_id_customer_id",
        "payment_orders",
        ["org_id", "customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_payment_orders_org_id_payment_link_id",
        "payment_orders",
        ["org_id", "payment_link_id"],
        unique=False,
    )
    op.create_index(
        "ix_payment_orders_org_id_status", "payment_orders", ["org_id", "status"], unique=False
    )
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    # The application role: DML only, never ownership. Deleting users is not granted:
    # identities are global; removing a membership is the tenant-level operation.
    for table in APP_DML:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {roles.app}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON users TO {roles.app}")
    op.execute(f"GRANT SELECT, INSERT ON outbox_events TO {roles.app}")
    # The relay role reads and marks the outbox of every tenant, and nothing else.
    op.execute(f"GRANT SELECT, UPDATE, DELETE ON outbox_events TO {roles.relay}")
    # The resolver role (owner of the SECURITY DEFINER lookups) reads only the columns
    # those lookups return or match on.
    op.execute(f"GRANT SELECT (id, email, password_hash, is_active) ON users TO {roles.resolver}")
    op.execute(f"GRANT SELECT (org_id, id, token) ON payment_links TO {roles.resolver}")
    op.execute(f"GRANT SELECT (org_id, id, chain, address) ON wallets TO {roles.resolver}")
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index("ix_payment_orders_org_id_status", table_name="payment_orders")
    op.drop_index("ix_payment_orders_org_id_payment_link_id", table_name="payment_orders")
    op.drop_index("ix_payment_orders_org_id_customer_id", table_name="payment_orders")
    op.drop_index("ix_payment_orders_org_id_created_at", table_name="payment_orders")
    op.drop_index("ix_payment_orders_org_id_agent_id", table_name="payment_orders")
    op.drop_table("payment_orders")
    op.drop_index("ix_wallet_transactions_org_id_wallet_id", table_name="wallet_transactions")
    op.drop_table("wallet_transactions")
    op.drop_index("ix_payment_links_org_id_status_expires_at", table_name="payment_links")
    op.drop_index("ix_payment_links_org_id_price_id", table_name="payment_links")
    op.drop_table("payment_links")
    op.drop_index("ix_wallets_org_id_chain", table_name="wallets")
    op.drop_index("ix_wallets_org_id_agent_id", table_name="wallets")
    op.drop_table("wallets")
    op.drop_index("uq_prices_one_active", table_name="prices", postgresql_where=sa.text("active"))
    op.drop_index("ix_prices_org_id_product_id", table_name="prices")
    op.drop_table("prices")
    op.drop_index(
        "uq_payment_methods_one_default",
        table_name="payment_methods",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_index("ix_payment_methods_org_id_customer_id", table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_index("uq_products_org_id_sku", table_name="products")
    op.drop_table("products")
    op.drop_table("memberships")
    op.drop_index("uq_customers_org_id_email", table_name="customers")
    op.drop_table("customers")
    op.drop_index("ix_agents_org_id_status", table_name="agents")
    op.drop_index("ix_agents_org_id_role", table_name="agents")
    op.drop_index("ix_agents_org_id_capabilities", table_name="agents", postgresql_using="gin")
    op.drop_table("agents")
    op.drop_table("users")
    op.drop_index(
        "ix_outbox_events_pending",
        table_name="outbox_events",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_outbox_events_org_id_occurred_at", table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_table("organizations")
    op.execute("DROP EXTENSION IF EXISTS btree_gin")
    # ### end Alembic commands ###
