"""The lookup rows a wallet needs: its address on its chain, and its family address's holder.

Both are global keys kept outside ``wallets`` so that Citus can distribute it by
``org_id`` (migrations 0012 and 0013): ``wallet_addresses`` holds each
``(chain, address)`` once, ``wallet_address_holders`` each ``(chain_family,
address)`` once, with the one organization whose wallets may use it on every chain
of the family. A wallet references both, so the database refuses one written
without them.

``claim`` writes them before the wallets, ``release`` removes them after, in the
caller's transaction. The address row is the wallet's own; the holder row is
shared by the organization's wallets on the family address and goes with the last.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from repositories.models import Wallet, WalletAddress, WalletAddressHolder
from repositories.models.wallet import DEFAULT_CHAIN_FAMILY
from tenancy.error_translation import translated

#: The organization's own holder row: claiming it again does nothing. Another
#: organization's row is not this key's conflict, so the primary key refuses it.
_OWN_HOLDER = "uq_wallet_address_holders_chain_family_address_org_id"


async def claim(session: AsyncSession, wallets: Sequence[Wallet]) -> None:
    """Write the address and holder rows ``wallets`` reference (org_id from the setting).

    Gives each wallet its id and family first, as the rows must name them.

    Raises:
        Conflict: an address is registered on its chain (``pk_wallet_addresses``),
            or held by another organization on its family
            (``pk_wallet_address_holders``); the statement wrote nothing.
    """
    for wallet in wallets:
        if wallet.id is None:
            wallet.id = uuid.uuid4()
        if wallet.chain_family is None:
            wallet.chain_family = DEFAULT_CHAIN_FAMILY
    if not wallets:
        return
    addresses = [{"chain": w.chain, "address": w.address, "wallet_id": w.id} for w in wallets]
    # Sorted: concurrent claims of the same addresses take their locks in one order.
    holders = sorted({(w.chain_family, w.address) for w in wallets})
    claimed = pg_insert(WalletAddressHolder).on_conflict_do_nothing(constraint=_OWN_HOLDER)
    with translated():
        # The address first: a duplicate on the same chain is named by its own key.
        await session.execute(insert(WalletAddress), addresses)
        await session.execute(claimed, [{"chain_family": f, "address": a} for f, a in holders])


async def release(session: AsyncSession, deleted: Iterable[Any]) -> None:
    """Delete the lookup rows of deleted wallets; a holder row only with its last wallet.

    ``deleted`` holds the wallets or rows, with ``chain``, ``chain_family`` and
    ``address``. Runs after the wallets are gone, since they reference these rows.

    Raises:
        ForeignKeyViolation: a concurrent transaction of the organization added a
            wallet on a released family address and committed first; nothing is
            lost, and a retry keeps the holder row for it. (The app role may not
            lock a lookup row, which needs UPDATE, so the check cannot wait for it.)
    """
    rows = list(deleted)
    if not rows:
        return
    addresses = sorted({(row.chain, row.address) for row in rows})
    families = sorted({(row.chain_family, row.address) for row in rows})
    holder_key = tuple_(WalletAddressHolder.chain_family, WalletAddressHolder.address)
    wallet_key = tuple_(Wallet.chain_family, Wallet.address)
    address_key = tuple_(WalletAddress.chain, WalletAddress.address)
    with translated():
        await session.execute(delete(WalletAddress).where(address_key.in_(addresses)))
        kept = select(Wallet.chain_family, Wallet.address).where(wallet_key.in_(families))
        free = set(families) - {tuple(row) for row in await session.execute(kept.distinct())}
        if free:
            await session.execute(delete(WalletAddressHolder).where(holder_key.in_(sorted(free))))
