"""Migration tenancy_0012 over existing rows: lookups filled, resolvers work, downgrade restores.

Rows are written as superuser before the revision (RLS does not apply to a
superuser); the resolvers then run as they do in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.schema.migration import downgrade, upgrade
from tenancy.schema.resources import migrations_dir

REVISION = "tenancy_0012"
OLD_KEYS = {
    "uq_payment_links_token",
    "uq_wallets_chain_address",
    "uq_memberships_invitation_token_hash",
}
_SEED = (
    "INSERT INTO organizations (id, name) VALUES (:org, 'Org')",
    "INSERT INTO users (id, email, username) VALUES (:user, :email, :email)",
    "INSERT INTO products (org_id, id, name) VALUES (:org, :product, 'Plan')",
    "INSERT INTO prices (org_id, id, product_id, currency, unit_amount)"
    " VALUES (:org, :price, :product, 'EUR', 100)",
    "INSERT INTO payment_links (org_id, id, price_id, token) VALUES (:org, :link, :price, :token)",
    "INSERT INTO wallets (org_id, id, chain, address) VALUES (:org, :wallet, 'ethereum', :address)",
    "INSERT INTO memberships (org_id, user_id, role, status, invitation_token_hash,"
    " invitation_expires_at) VALUES (:org, :user, 'member', 'pending', :hash,"
    " now() + interval '1 day')",
)


def previous_revision() -> str:
    """Return the revision tenancy_0012 applies to."""
    revision = ScriptDirectory(str(migrations_dir())).get_revision(REVISION)
    assert revision is not None
    assert isinstance(revision.down_revision, str)
    return revision.down_revision


async def run(url: URL, *statements: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    """Run ``statements`` as superuser in one transaction; return the last one's rows."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            rows: list[Any] = []
            for statement in statements:
                result = await connection.execute(text(statement), dict(params or {}))
                rows = list(result.all()) if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


async def seeded_before_the_lookups(url: URL) -> dict[str, Any]:
    """Migrate ``url`` to the revision before 0012 and write one row of each keyed kind."""
    await asyncio.to_thread(upgrade, url, previous_revision())
    token = secrets.token_urlsafe(32)
    values: dict[str, Any] = {
        "org": uuid.uuid4(),
        "user": uuid.uuid4(),
        "email": f"{secrets.token_hex(4)}@example.com",
        "product": uuid.uuid4(),
        "price": uuid.uuid4(),
        "link": uuid.uuid4(),
        "token": secrets.token_urlsafe(32),
        "wallet": uuid.uuid4(),
        "address": "0x" + secrets.token_hex(20),
        "invitation": token,
        "hash": hashlib.sha256(token.encode()).digest(),
    }
    await run(url, *_SEED, params=values)
    return values


async def constraint_names(url: URL) -> set[str]:
    rows = await run(url, "SELECT conname FROM pg_constraint")
    return {row[0] for row in rows}


async def test_upgrade_copies_existing_keys_into_the_lookups(empty_url: URL) -> None:
    seeded = await seeded_before_the_lookups(empty_url)

    await asyncio.to_thread(upgrade, empty_url, REVISION)

    links = await run(empty_url, "SELECT token, org_id, link_id FROM payment_link_tokens")
    wallets = await run(empty_url, "SELECT chain, address, org_id, wallet_id FROM wallet_addresses")
    invitations = await run(empty_url, "SELECT token_hash, org_id, user_id FROM invitation_tokens")
    assert links == [(seeded["token"], seeded["org"], seeded["link"])]
    assert wallets == [("ethereum", seeded["address"], seeded["org"], seeded["wallet"])]
    assert invitations == [(seeded["hash"], seeded["org"], seeded["user"])]
    assert not OLD_KEYS & await constraint_names(empty_url)


async def test_resolvers_find_rows_written_before_the_upgrade(empty_url: URL) -> None:
    seeded = await seeded_before_the_lookups(empty_url)

    await asyncio.to_thread(upgrade, empty_url, REVISION)

    link = await run(empty_url, "SELECT * FROM resolve_payment_link(:token)", params=seeded)
    wallet = await run(
        empty_url, "SELECT * FROM resolve_wallet('ethereum', upper(:address))", params=seeded
    )
    accepted = await run(empty_url, "SELECT accept_invitation(:invitation, :user)", params=seeded)
    assert link == [(seeded["org"], seeded["link"])]
    assert wallet == [(seeded["org"], seeded["wallet"])]
    assert accepted == [(seeded["org"],)]
    assert await run(empty_url, "SELECT count(*) FROM invitation_tokens") == [(0,)]


async def test_downgrade_restores_the_global_unique_keys_and_keeps_the_rows(
    empty_url: URL,
) -> None:
    seeded = await seeded_before_the_lookups(empty_url)
    await asyncio.to_thread(upgrade, empty_url, REVISION)

    await asyncio.to_thread(downgrade, empty_url, previous_revision())

    assert await constraint_names(empty_url) >= OLD_KEYS
    tables = await run(
        empty_url,
        "SELECT count(*) FROM pg_tables WHERE tablename IN"
        " ('payment_link_tokens', 'wallet_addresses', 'invitation_tokens')",
    )
    assert tables == [(0,)]
    link = await run(empty_url, "SELECT * FROM resolve_payment_link(:token)", params=seeded)
    assert link == [(seeded["org"], seeded["link"])]
