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

from sqlalchemy import Table, insert, select
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
    TableSpec(
        "memberships", lambda g: {"user_id": g.id("users"), "role": "member"}, ("role", "admin")
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
        "payment_links",
        lambda g: {"id": uuid.uuid4(), "price_id": g.id("prices"), "token": secrets.token_hex(16)},
        ("status", "inactive"),
    ),
    TableSpec("payment_orders", _order, ("description", "renamed")),
    TableSpec(
        "wallets",
        lambda g: {
            "id": uuid.uuid4(),
            "agent_id": g.id("agents"),
            "chain": "ethereum",
            "address": "0x" + secrets.token_hex(20),
        },
        ("label", "renamed"),
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

#: Unique keys that do not include ``org_id`` on purpose.
GLOBAL_KEYS: tuple[GlobalKey, ...] = (
    GlobalKey("payment_links", ("token",)),
    GlobalKey("wallets", ("chain", "address")),
    GlobalKey("users", ("email",)),
    GlobalKey("users", ("username",)),
)

SPECS: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}


async def new_tenant(db: Database, name: str) -> TenantGraph:
    """Create an organization with one row in every table, as that tenant (app role)."""
    graph = TenantGraph(uuid.uuid4())
    async with db.session(graph.org_id) as session:
        connection = await session.connection()
        for spec in TABLES:
            row = spec.new_row(graph)
            if spec.tenant_column is not None:
                row[spec.tenant_column] = graph.org_id
            if spec.name == "organizations":
                row["name"] = name
            await connection.execute(insert(spec.table).values(row))
            graph.rows[spec.name] = row
    return graph


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
