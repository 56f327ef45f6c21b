"""Helpers of the wallet tests: fresh wallets, outbox reads, tenant-scoped row reads."""

from __future__ import annotations

import uuid
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from sqlalchemy import select

from repositories.models import OutboxEvent, Wallet, WalletTransaction
from repositories.wallets.chain import SignedTransaction, UnsignedTransaction
from repositories.wallets.custody import sign_challenge
from repositories.wallets.service import WalletService
from repositories.wallets.signer import LocalKeySigner
from tenancy import Database

ETHER = 10**18


async def new_wallet(
    service: WalletService, org_id: uuid.UUID, chain: str, signer: LocalKeySigner | None = None
) -> Wallet:
    """Register a wallet on a fresh key; ``signer`` (if given) holds the key for ``org_id``."""
    account = Account.create()
    if signer is not None:
        signer.add_key(org_id, account.key)
    return await register_proven(service, org_id, chain, account)


async def register_proven(
    service: WalletService, org_id: uuid.UUID, chain: str, account: LocalAccount
) -> Wallet:
    """Register ``account``'s address for ``org_id`` with a proof signed by its key."""
    challenge = service.control_challenge(org_id, chain, account.address)
    proof = sign_challenge(challenge, account.key)
    return await service.register_wallet(org_id, chain, account.address, proof=proof)


def checksummed(wallet: Wallet) -> str:
    """Return the wallet's address in EIP-55 form."""
    return str(to_checksum_address(wallet.address))


async def transactions(db: Database, org_id: uuid.UUID) -> list[WalletTransaction]:
    """Return every wallet transaction ``org_id`` can see, in block order."""
    async with db.session(org_id) as session:
        statement = select(WalletTransaction).order_by(
            WalletTransaction.block_number, WalletTransaction.log_index
        )
        return list((await session.execute(statement)).scalars())


async def events(db: Database, org_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    """Return the payloads of ``org_id``'s outbox events of one type, oldest first."""
    async with db.session(org_id) as session:
        statement = (
            select(OutboxEvent.payload)
            .where(OutboxEvent.event_type == event_type)
            .order_by(OutboxEvent.occurred_at, OutboxEvent.position)
        )
        return list((await session.execute(statement)).scalars())


async def sign_with(key: bytes, transaction: UnsignedTransaction) -> SignedTransaction:
    """Sign ``transaction`` with ``key``, held for a throwaway organization."""
    org_id = uuid.uuid4()
    signer = LocalKeySigner()
    signer.add_key(org_id, key)
    return await signer.sign(org_id, transaction)
