"""Migration tenancy_0013 over existing wallets: holders filled, exclusion gone, downgrade restores.

Wallets are written as superuser before the revision (RLS does not apply to a
superuser): one organization's address on two chains, another's on one.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

from sqlalchemy.engine import URL

from tenancy.schema.migration import downgrade, upgrade
from tests.cli.test_global_key_migration import run

REVISION = "tenancy_0013"
PREVIOUS = "tenancy_0012"
EXCLUSION = "ex_wallets_family_address_one_org"
_SEED = (
    "INSERT INTO organizations (id, name) VALUES (:acme, 'Acme'), (:globex, 'Globex')",
    "INSERT INTO wallet_addresses (chain, address, org_id, wallet_id) VALUES"
    " ('ethereum', :shared, :acme, :w1), ('polygon', :shared, :acme, :w2),"
    " ('ethereum', :own, :globex, :w3)",
    "INSERT INTO wallets (org_id, id, chain, address) VALUES"
    " (:acme, :w1, 'ethereum', :shared), (:acme, :w2, 'polygon', :shared),"
    " (:globex, :w3, 'ethereum', :own)",
)


async def seeded_before_the_holders(url: URL) -> dict[str, Any]:
    """Migrate ``url`` to tenancy_0012 and write three wallets on two family addresses."""
    await asyncio.to_thread(upgrade, url, PREVIOUS)
    values: dict[str, Any] = {
        "acme": uuid.uuid4(),
        "globex": uuid.uuid4(),
        "shared": "0x" + secrets.token_hex(20),
        "own": "0x" + secrets.token_hex(20),
        **{f"w{n}": uuid.uuid4() for n in (1, 2, 3)},
    }
    await run(url, *_SEED, params=values)
    return values


async def test_upgrade_writes_one_holder_row_per_organization_and_family_address(
    empty_url: URL,
) -> None:
    seeded = await seeded_before_the_holders(empty_url)

    await asyncio.to_thread(upgrade, empty_url, REVISION)

    holders = await run(
        empty_url, "SELECT chain_family, address, org_id FROM wallet_address_holders"
    )
    assert set(holders) == {
        ("evm", seeded["shared"], seeded["acme"]),
        ("evm", seeded["own"], seeded["globex"]),
    }


async def test_upgrade_drops_the_exclusion_and_btree_gist(empty_url: URL) -> None:
    await seeded_before_the_holders(empty_url)

    await asyncio.to_thread(upgrade, empty_url, REVISION)

    left = await run(
        empty_url,
        "SELECT (SELECT count(*) FROM pg_constraint WHERE conname = :name),"
        " (SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist')",
        params={"name": EXCLUSION},
    )
    assert left == [(0, 0)]


async def test_downgrade_restores_the_exclusion_and_keeps_the_wallets(empty_url: URL) -> None:
    await seeded_before_the_holders(empty_url)
    await asyncio.to_thread(upgrade, empty_url, REVISION)

    await asyncio.to_thread(downgrade, empty_url, PREVIOUS)

    found = await run(
        empty_url,
        "SELECT (SELECT count(*) FROM pg_constraint WHERE conname = :name),"
        " (SELECT count(*) FROM wallets), to_regclass('wallet_address_holders') IS NULL",
        params={"name": EXCLUSION},
    )
    assert found == [(1, 3, True)]
