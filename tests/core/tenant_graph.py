"""Per-table row factories, and a tenant graph holding one row in every table.

The isolation matrix is driven from ``TABLES``: each entry says how to make a
fresh row of its table inside a tenant, which key identifies a row, which
column the application may change, and which privileges the app role has on
it. Factories draw random values so tenants never collide on global keys.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.models import Base
from tenancy import Database

Row = dict[str, Any]


@dataclass
class TenantGraph:
    """One tenant and the values of the single row it holds in every table."""

    org_id: uuid.UUID
    rows: dict[str, Row] = field(default_factory=dict)

    def id(self, table: str) -> Any:
        """Return the ``id`` of this tenant's row in ``table``."""
        return self.rows[table]["id"]

    def key(self, spec: TableSpec) -> Row:
        """Return the primary-key values of this tenant's row in ``spec``'s table."""
        return {column: self.rows[spec.name][column] for column in spec.key}


@dataclass(frozen=True)
class Tenants:
    """Two tenants, each holding one row in every table: ``a`` acts, ``b`` is the victim."""

    a: TenantGraph
    b: TenantGraph


@dataclass(frozen=True)
class TableSpec:
    """How the matrix treats one table."""

    name: str
    new_row: Callable[[TenantGraph], Row]
    change: tuple[str, Any]
    #: The column holding the tenant id (``id`` for organizations; users have none).
    tenant_column: str | None = "org_id"
    app_may_update: bool = True
    app_may_delete: bool = True
    #: The app ends the graph's row only through a definer function: its own DELETE
    #: of it finds no row (an accepted membership: remove_membership).
    ended_by_function: bool = False
    #: For a table whose global keys live in lookup tables: each table, and the
    #: lookup row a new row of this table needs there first.
    lookups: tuple[tuple[str, Callable[[Row], Row]], ...] = ()

    @property
    def table(self) -> Table:
        """Return the SQLAlchemy table."""
        return Base.metadata.tables[self.name]

    @property
    def key(self) -> tuple[str, ...]:
        """Return the primary-key column names."""
        return tuple(column.name for column in self.table.primary_key.columns)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Reference:
    """A composite foreign key ``(org_id, column) -> (org_id, parent.id)``."""

    table: str
    column: str
    parent: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class LookupReference:
    """A foreign key ``(key..., org_id, id)`` from a table to its global key's lookup row."""

    table: str
    parent: str
    #: (column of ``table``, column of ``parent``), org_id left out.
    columns: tuple[tuple[str, str], ...]
    #: What else a row needs to reach the foreign key check (past the other policies).
    extra: tuple[tuple[str, Any], ...] = ()
    #: The row's other lookups, written in the acting tenant before it, so that this
    #: foreign key is the one that refuses it.
    written_first: tuple[str, ...] = ()
    #: The constraints that may refuse the claim, if not this foreign key alone.
    refused_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.table}->{self.parent}"


@dataclass(frozen=True)
class GlobalKey:
    """A unique key that is deliberately global (a random token, not tenant data)."""

    table: str
    columns: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.table}({','.join(self.columns)})"


def _hex() -> str:
    return uuid.uuid4().hex


def _user(g: TenantGraph) -> Row:
    tag = _hex()
    return {"id": uuid.uuid4(), "email": f"{tag}@example.com", "username": f"user_{tag}"}


def _order(g: TenantGraph) -> Row:
    return {
        "id": uuid.uuid4(),
        "customer_id": g.id("customers"),
        "payment_link_id": g.id("payment_links"),
        "agent_id": g.id("agents"),
        "amount": 2500,
        "currency": "EUR",
        "idempotency_key": f"idem-{_hex()}",
    }


def _wallet_transaction(g: TenantGraph) -> Row:
    return {
        "id": uuid.uuid4(),
        "wallet_id": g.id("wallets"),
        "chain": "ethereum",
        "tx_hash": "0x" + secrets.token_hex(32),
        "direction": "in",
        "amount": Decimal(10**18),
    }


def _link_token(link: Row) -> Row:
    return {"token": link["token"], "link_id": link["id"]}


def _wallet_address(wallet: Row) -> Row:
    return {"chain": wallet["chain"], "address": wallet["address"], "wallet_id": wallet["id"]}


def _wallet_holder(wallet: Row) -> Row:
    return {"chain_family": wallet.get("chain_family", "evm"), "address": wallet["address"]}


def _outbox_event(g: TenantGraph) -> Row:
    return {
        "id": uuid.uuid4(),
        "aggregate_type": "customer",
        "aggregate_id": str(g.id("customers")),
        "event_type": "CustomerCreated",
        "payload": {"customer_id": str(g.id("customers"))},
    }


#: Every table under row-level security, parents before children.
TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "organizations",
        lambda g: {"id": uuid.uuid4(), "name": "Org"},
        ("name", "renamed"),
        tenant_column="id",
    ),
    TableSpec(
        "users",
        _user,
        ("display_name", "renamed"),
        tenant_column=None,
        # A user is shared by organizations: no tenant may change it (migration 0009).
        app_may_update=False,
        app_may_delete=False,
    ),
    # The app role reads, inserts and deletes lookup rows; it never changes one.
    TableSpec(
        "invitation_tokens",
        lambda g: {"token_hash": secrets.token_bytes(32), "user_id": g.id("users")},
        ("user_id", uuid.UUID(int=1)),
        app_may_update=False,
    ),
    # A tenant inserts only invitations (consent_insert); a member joins through
    # join_organization (new_tenant), which also makes the user visible here.
    TableSpec(
        "memberships",
        lambda g: {"user_id": g.id("users"), "role": "member", "status": "pending"},
        ("role", "admin"),
        # The graph's membership is accepted: only remove_membership ends one.
        ended_by_function=True,
    ),
    TableSpec("agents", lambda g: {"id": uuid.uuid4(), "name": "Agent"}, ("name", "renamed")),
    TableSpec(
        "customers",
        lambda g: {"id": uuid.uuid4(), "email": f"{_hex()}@example.com", "name": "Customer"},
        ("name", "renamed"),
    ),
    TableSpec(
        "payment_methods",
        lambda g: {"id": uuid.uuid4(), "customer_id": g.id("customers"), "type": "card"},
        ("label", "renamed"),
    ),
    TableSpec(
        "products",
        lambda g: {"id": uuid.uuid4(), "name": "Widget", "sku": f"SKU-{_hex()}"},
        ("name", "renamed"),
    ),
    TableSpec(
        "prices",
        lambda g: {
            "id": uuid.uuid4(),
            "product_id": g.id("products"),
            "currency": "EUR",
            "unit_amount": 1000,
            # Superseded prices: only one active price per product and currency may exist.
            "active": False,
        },
        ("unit_amount", 999),
    ),
    TableSpec(
        "payment_link_tokens",
        lambda g: {"token": secrets.token_hex(16), "link_id": uuid.uuid4()},
        ("link_id", uuid.UUID(int=1)),
        app_may_update=False,
    ),
    TableSpec(
        "payment_links",
        lambda g: {"id": uuid.uuid4(), "price_id": g.id("prices"), "token": secrets.token_hex(16)},
        ("status", "inactive"),
        lookups=(("payment_link_tokens", _link_token),),
    ),
    TableSpec("payment_orders", _order, ("description", "renamed")),
    TableSpec(
        "wallet_addresses",
        lambda g: {
            "chain": "ethereum",
            "address": "0x" + secrets.token_hex(20),
            "wallet_id": uuid.uuid4(),
        },
        ("wallet_id", uuid.UUID(int=1)),
        app_may_update=False,
    ),
    TableSpec(
        "wallet_address_holders",
        lambda g: {"chain_family": "evm", "address": "0x" + secrets.token_hex(20)},
        ("chain_family", "evm"),
        app_may_update=False,
    ),
    TableSpec(
        "wallets",
        lambda g: {
            "id": uuid.uuid4(),
            "agent_id": g.id("agents"),
            "chain": "ethereum",
            "address": "0x" + secrets.token_hex(20),
        },
        ("label", "renamed"),
        lookups=(
            ("wallet_addresses", _wallet_address),
            ("wallet_address_holders", _wallet_holder),
        ),
    ),
    TableSpec("wallet_transactions", _wallet_transaction, ("status", "confirmed")),
    # The outbox is append-only for the app role: only the relay marks rows.
    TableSpec(
        "outbox_events",
        _outbox_event,
        ("status", "published"),
        app_may_update=False,
        app_may_delete=False,
    ),
)

#: Tables with a tenant column (all but the global users table).
TENANT_SCOPED: tuple[TableSpec, ...] = tuple(s for s in TABLES if s.tenant_column is not None)

#: Every composite foreign key between tenant tables.
REFERENCES: tuple[Reference, ...] = (
    Reference("payment_methods", "customer_id", "customers"),
    Reference("prices", "product_id", "products"),
    Reference("payment_links", "price_id", "prices"),
    Reference("payment_orders", "customer_id", "customers"),
    Reference("payment_orders", "payment_link_id", "payment_links"),
    Reference("payment_orders", "agent_id", "agents"),
    Reference("wallets", "agent_id", "agents"),
    Reference("wallet_transactions", "wallet_id", "wallets"),
)

#: Every foreign key from a table to the lookup row of its global key.
LOOKUP_REFERENCES: tuple[LookupReference, ...] = (
    LookupReference(
        "payment_links", "payment_link_tokens", (("token", "token"), ("id", "link_id"))
    ),
    LookupReference(
        "wallets",
        "wallet_addresses",
        (("chain", "chain"), ("address", "address"), ("id", "wallet_id")),
        # The other tenant holds the family address too, so the acting tenant can write
        # neither lookup row: whichever foreign key is checked first refuses the row.
        refused_by=(
            "fk_wallets_chain_address_org_id_id_wallet_addresses",
            "fk_wallets_chain_family_address_org_id_wallet_address_holders",
        ),
    ),
    LookupReference(
        "wallets",
        "wallet_address_holders",
        (("chain_family", "chain_family"), ("address", "address")),
        # The other tenant's address on another chain of the family (migration 0013):
        # its own address row is free there, its holder row cannot be.
        extra=(("chain", "polygon"),),
        written_first=("wallet_addresses",),
    ),
    LookupReference(
        "memberships",
        "invitation_tokens",
        (("invitation_token_hash", "token_hash"), ("user_id", "user_id")),
        # A tenant inserts only invitations (the consent_insert policy).
        extra=(("status", "pending"),),
    ),
)

#: Unique keys that do not include ``org_id`` on purpose: the lookups' primary keys.
GLOBAL_KEYS: tuple[GlobalKey, ...] = (
    GlobalKey("payment_link_tokens", ("token",)),
    GlobalKey("wallet_addresses", ("chain", "address")),
    GlobalKey("wallet_address_holders", ("chain_family", "address")),
    GlobalKey("invitation_tokens", ("token_hash",)),
    GlobalKey("users", ("email",)),
    GlobalKey("users", ("username",)),
)

SPECS: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}

#: Lookup tables whose row in the graph is the one its owner's row references (an
#: invitation token has none: the graph's membership is no invitation).
_OWNED_LOOKUPS = frozenset(lookup for spec in TABLES for lookup, _ in spec.lookups)


_JOIN = text("SELECT public.join_organization(:user_id, :role)")


async def new_tenant(db: Database, name: str) -> TenantGraph:
    """Create an organization with one row in every table, as that tenant (app role)."""
    graph = TenantGraph(uuid.uuid4())
    async with db.session(graph.org_id) as session:
        connection = await session.connection()
        for spec in TABLES:
            if spec.name in _OWNED_LOOKUPS:
                continue  # the owner's row brings it
            row = spec.new_row(graph)
            if spec.tenant_column is not None:
                row[spec.tenant_column] = graph.org_id
            if spec.name == "organizations":
                row["name"] = name
            if spec.name == "memberships":
                await connection.execute(_JOIN, {"user_id": row["user_id"], "role": "member"})
                joined = await connection.execute(
                    select(spec.table).where(spec.table.c.user_id == row["user_id"])
                )
                graph.rows[spec.name] = dict(joined.one()._mapping)
                continue
            for lookup, make_lookup_row in spec.lookups:
                lookup_row = {**make_lookup_row(row), "org_id": graph.org_id}
                await connection.execute(insert(SPECS[lookup].table).values(lookup_row))
                graph.rows[lookup] = lookup_row
            await connection.execute(insert(spec.table).values(row))
            graph.rows[spec.name] = row
    return graph


async def add_lookup(
    db: Database, graph: TenantGraph, spec: TableSpec, row: Row, *, only: tuple[str, ...] = ()
) -> None:
    """Commit, in ``graph``'s tenant, the lookup rows a new ``row`` of ``spec`` needs (if any).

    With ``only``, just the rows of those lookup tables.
    """
    wanted = [(t, make) for t, make in spec.lookups if not only or t in only]
    if not wanted:
        return
    async with db.session(graph.org_id) as session:
        for lookup, make_lookup_row in wanted:
            await session.execute(insert(SPECS[lookup].table).values(make_lookup_row(row)))


async def snapshot(superuser: AsyncEngine, graph: TenantGraph) -> dict[str, list[Row]]:
    """Read every row of ``graph``'s tenant, bypassing RLS; each table must hold some."""
    rows: dict[str, list[Row]] = {}
    async with superuser.connect() as connection:
        for spec in TABLES:
            table = spec.table
            column = spec.tenant_column or "id"
            value = graph.org_id if spec.tenant_column else graph.id(spec.name)
            result = await connection.execute(select(table).where(table.c[column] == value))
            rows[spec.name] = [dict(r) for r in result.mappings()]
            assert rows[spec.name], f"{graph.org_id} has no row in {spec.name}"
    return rows


@asynccontextmanager
async def unchanged(superuser: AsyncEngine, victim: TenantGraph) -> AsyncIterator[None]:
    """Assert that the enclosed block leaves every row of ``victim`` exactly as it was."""
    before = await snapshot(superuser, victim)
    yield
    assert await snapshot(superuser, victim) == before
