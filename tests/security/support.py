"""Seeded tenants and raw connections shared by the security suite."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import URL

from repositories.models import (
    Agent,
    Customer,
    Organization,
    PaymentOrder,
    Price,
    Product,
    Wallet,
    WalletAddress,
    WalletAddressHolder,
)
from tenancy import Database

#: Values both tenants use on purpose: unique keys must not collide across tenants.
SHARED_SKU = "SKU-SHARED"
SHARED_IDEMPOTENCY_KEY = "idem-shared"


@dataclass(frozen=True)
class Seeded:
    """One tenant's rows: exactly what it, and nobody else, may see."""

    org_id: uuid.UUID
    emails: frozenset[str]
    customer_ids: frozenset[uuid.UUID]
    order_ids: frozenset[uuid.UUID]
    order_total: int
    product_id: uuid.UUID
    wallet_address: str


async def seed_tenant(db: Database, label: str, customers: int = 3) -> Seeded:
    """Create an organization with customers, one order each, a product and a wallet."""
    org_id = uuid.uuid4()
    emails = [f"{label}{i}.{org_id.hex[:8]}@example.test" for i in range(customers)]
    customer_rows = [Customer(id=uuid.uuid4(), email=email, name=label) for email in emails]
    # Amounts differ per tenant so that an aggregate over the wrong rows shows.
    orders = [
        PaymentOrder(
            id=uuid.uuid4(),
            customer_id=c.id,
            amount=(i + 1) * len(label) * 100,
            currency="EUR",
            idempotency_key=SHARED_IDEMPOTENCY_KEY if i == 0 else f"idem-{i}",
        )
        for i, c in enumerate(customer_rows)
    ]
    product = Product(id=uuid.uuid4(), name=f"{label} product", sku=SHARED_SKU)
    wallet = Wallet(id=uuid.uuid4(), chain="ethereum", address=f"0x{secrets.token_hex(20)}")
    address = WalletAddress(chain=wallet.chain, address=wallet.address, wallet_id=wallet.id)
    holder = WalletAddressHolder(chain_family="evm", address=wallet.address)
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=label))
        await session.flush()
        # The address's lookup and holder rows before the wallet that references them.
        session.add_all([*customer_rows, product, address, holder, Agent(name=f"{label} agent")])
        await session.flush()
        session.add(wallet)
        session.add_all([*orders, Price(product_id=product.id, currency="EUR", unit_amount=100)])
    return Seeded(
        org_id=org_id,
        emails=frozenset(emails),
        customer_ids=frozenset(c.id for c in customer_rows),
        order_ids=frozenset(o.id for o in orders),
        order_total=sum(o.amount for o in orders),
        product_id=product.id,
        wallet_address=wallet.address,
    )


def dsn(url: URL) -> str:
    """Return ``url`` as a plain libpq DSN for asyncpg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: URL, **kwargs: object) -> asyncpg.Connection:
    """Open a raw asyncpg connection to ``url``."""
    return await asyncpg.connect(dsn(url), **kwargs)
