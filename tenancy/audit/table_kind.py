"""What a table is to the tenants: tenant-owned, the tenant root, global, shared, or unknown.

This library's own tables (``organizations``, ``users``, the chain bookkeeping)
and its reviewed exceptions apply only where its conventions are in use; another
team's schema is judged by its ``IsolationConfig`` alone.
"""

from __future__ import annotations

from enum import StrEnum

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.audit.pg_catalog import Table

TENANT_COLUMN = "org_id"
#: The tenant table itself: its ``id`` is the tenant id.
TENANT_ROOT = "organizations"
#: Tables without ``org_id`` by design but still under RLS (their own rules), and why.
GLOBAL_TABLES = {"users": "global identities, visible in a tenant through memberships"}
#: Tables that hold no tenant data at all, so no RLS; they must not reference tenant rows.
SHARED_TABLES = {
    "chain_checkpoints": "the deposit scanner's position per chain (public chain facts)",
    "chain_blocks": "hashes of scanned blocks, for reorganisation checks (public chain facts)",
}
#: Unique keys allowed to leave out ``org_id``: random global tokens, which reveal
#: nothing about another tenant. Kept here, in reviewed code, rather than as a
#: ``COMMENT`` in the database: the audit must not take the audited database's word
#: for its own exceptions. Name *and* columns must match, so renaming another
#: constraint to an allowed name does not slip through.
#: Each is the primary key of a lookup table that the owning row references
#: (migrations 0012, 0013), which Citus accepts where a tenant table's would be refused.
GLOBAL_TOKEN_KEYS = frozenset(
    {
        ("payment_link_tokens", "pk_payment_link_tokens", ("token",)),
        ("wallet_addresses", "pk_wallet_addresses", ("chain", "address")),
        # The organization holding an address on every chain of its family (migration
        # 0013): an address is derived from a random key, like the one above.
        ("wallet_address_holders", "pk_wallet_address_holders", ("chain_family", "address")),
        # SHA-256 of a 256-bit random invitation token (migration 0009).
        ("invitation_tokens", "pk_invitation_tokens", ("token_hash",)),
    }
)


class TableKind(StrEnum):
    """How a table relates to tenants."""

    TENANT = "tenant"
    ROOT = "root"
    GLOBAL = "global"
    SHARED = "shared"
    UNKNOWN = "UNKNOWN"


def uses_library_tables(config: IsolationConfig) -> bool:
    """Return whether this library's own tables and exceptions apply (its conventions are in use).

    Another team's schema, with its own tenant column or setting, is judged by its
    configuration alone: a table of theirs named ``users`` is not this library's.
    """
    return config.tenant_column == TENANT_COLUMN and config.tenant_setting == "app.org_id"


def table_kind(table: Table, config: IsolationConfig) -> TableKind:
    """Return whether ``table`` is tenant-owned, the tenant root, declared global, or neither."""
    library = uses_library_tables(config) and table.schema == "public"
    if library and table.name == TENANT_ROOT:
        return TableKind.ROOT
    if config.column_for(table.schema, table.name) in table.columns:
        return TableKind.TENANT
    if library and table.name in GLOBAL_TABLES:
        return TableKind.GLOBAL
    if (library and table.name in SHARED_TABLES) or config.is_global(table.schema, table.name):
        return TableKind.SHARED
    return TableKind.UNKNOWN


def tenant_column(table: Table, kind: TableKind, config: IsolationConfig) -> str:
    """Return the column holding ``table``'s tenant (the root's own ``id``)."""
    return "id" if kind is TableKind.ROOT else config.column_for(table.schema, table.name)
