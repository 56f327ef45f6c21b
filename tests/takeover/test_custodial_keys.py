"""Custodial keys belong to their organization: no payout, deposit or lookup across tenants.

Acme (``org_a``) attacks Globex (``org_b``), whose wallet is a key the platform's
signer holds for Globex. One EVM key controls its address on every EVM chain, so
the attacks use a second chain name next to the test chain, both EVM.
"""

# The wallet suite's fixtures are imported to be used here (no conftest in this
# shared directory), so their names are parameters as well: F811 is expected.
# ruff: noqa: F811

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from repositories.models import Wallet, WalletAddress, WalletAddressHolder
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.custody import CHALLENGE_TTL, new_challenge, sign_challenge
from repositories.wallets.service import WalletService
from repositories.wallets.signer import LocalKeySigner
from repositories.wallets.web3_gateway import Web3Gateway
from tenancy import Database
from tenancy.errors import Conflict, InvalidData, IsolationViolation
from tests.wallets.conftest import (  # noqa: F401
    TESTER_REJECTIONS,
    TestChain,
    chain,
    chain_config,
    chain_db,
    chain_name,
    gateway,
    outbox_db,
    signer,
    stablecoin,
)
from tests.wallets.support import ETHER, transactions

pytestmark = pytest.mark.security

#: A same-chain duplicate violates the address's lookup key, the same address on another
#: chain of the family its holder's key (SQLSTATE 23505 both): both are a Conflict.
HELD_ELSEWHERE = Conflict


async def force_wallet(session: AsyncSession, chain: str, address: str) -> Wallet:
    """Write a wallet and its lookup rows directly, past every check above the database.

    The wallet references its address's lookup row and its family address's holder
    row, so an attacker past the repository has to write them too.
    """
    wallet = Wallet(id=uuid.uuid4(), chain=chain, chain_family="evm", address=address)
    session.add(WalletAddress(chain=chain, address=address, wallet_id=wallet.id))
    await session.flush()
    session.add(WalletAddressHolder(chain_family="evm", address=address))
    await session.flush()
    session.add(wallet)
    await session.flush()
    return wallet


@pytest.fixture
def other_chain() -> str:
    """A second EVM chain name: the same keys control the same addresses there."""
    return f"evm2-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def service(
    outbox_db: Database,
    chain_db: ChainDatabase,
    chain: TestChain,
    chain_name: str,
    other_chain: str,
    chain_config: ChainConfig,
    gateway: Web3Gateway,
    signer: LocalKeySigner,
) -> WalletService:
    """The wallet service on two EVM chains (both backed by the one in-process EVM)."""
    other = Web3Gateway(other_chain, chain.w3, chain_config, rejections=TESTER_REJECTIONS)
    settings = ChainSettings(chains={chain_name: chain_config, other_chain: chain_config})
    gateways = {chain_name: gateway, other_chain: other}
    return WalletService(outbox_db, chain_db, settings, gateways, signer=signer)


async def test_another_org_cannot_register_a_held_address_on_another_evm_chain(
    service: WalletService,
    chain_name: str,
    other_chain: str,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    globex = await service.provision_wallet(org_b, chain_name)
    # Even a proof would not do: the address is Globex's on every EVM chain.
    key_holder = Account.create()
    proof = sign_challenge(new_challenge(org_a, key_holder.address), key_holder.key)

    with pytest.raises(IsolationViolation, match="another address"):
        await service.register_wallet(org_a, other_chain, _checksum(globex.address), proof=proof)


async def test_a_held_address_forced_in_by_sql_on_another_chain_is_refused_by_the_database(
    db: Database, chain_name: str, other_chain: str, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = Account.create().address.lower()
    async with db.session(org_b) as session:
        await force_wallet(session, chain_name, address)

    with pytest.raises(HELD_ELSEWHERE) as refused:
        async with db.session(org_a) as session:
            await force_wallet(session, other_chain, address)

    # The holder row's key is the family address alone: Globex's row holds it.
    assert refused.value.constraint == "pk_wallet_address_holders"


async def test_payout_from_a_row_forced_in_for_another_orgs_key_is_not_signed(
    chain: TestChain,
    service: WalletService,
    db: Database,
    signer: LocalKeySigner,
    chain_name: str,
    other_chain: str,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    globex = await service.provision_wallet(org_b, chain_name)
    await chain.pay(globex.address, 2 * ETHER)
    async with db.unit_of_work(org_b) as uow:
        await uow.wallets.delete(globex.id)
        await uow.commit()
    # Acme writes the row itself, skipping every check above the database.
    async with db.session(org_a) as session:
        forced = await force_wallet(session, other_chain, globex.address)

    with pytest.raises(InvalidData, match="no signing key"):
        await service.send_payout(org_a, forced.id, Account.create().address, ETHER)
    assert not signer.can_sign(org_a, globex.address)
    assert await chain.w3.eth.get_balance(_checksum(globex.address)) == 2 * ETHER


async def test_the_signer_refuses_to_sign_for_an_org_it_did_not_provision(
    gateway: Web3Gateway, signer: LocalKeySigner, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = await signer.provision(org_b)
    unsigned = await gateway.prepare_transfer(
        address, Account.create().address.lower(), "native", 1
    )

    with pytest.raises(IsolationViolation, match="no signing key of this organization"):
        await signer.sign(org_a, unsigned)


async def test_another_org_cannot_re_register_an_address_its_holder_deleted(
    service: WalletService,
    db: Database,
    chain_name: str,
    other_chain: str,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    globex = await service.provision_wallet(org_b, chain_name)
    async with db.unit_of_work(org_b) as uow:
        await uow.wallets.delete(globex.id)
        await uow.commit()
    # Acme has no key for the address: the best it can send is its own key's signature.
    acme_key = Account.create()
    challenge = new_challenge(org_a, _checksum(globex.address))

    for target in (chain_name, other_chain):
        with pytest.raises(IsolationViolation, match="signed by another key"):
            await service.register_wallet(
                org_a,
                target,
                _checksum(globex.address),
                proof=sign_challenge(challenge, acme_key.key),
            )


async def test_deposits_to_a_held_address_never_credit_a_squatter(
    chain: TestChain,
    service: WalletService,
    db: Database,
    chain_name: str,
    other_chain: str,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    globex = await service.provision_wallet(org_b, chain_name)
    with pytest.raises(HELD_ELSEWHERE):
        async with db.session(org_a) as session:
            await force_wallet(session, chain_name, globex.address)
    with pytest.raises(HELD_ELSEWHERE):
        async with db.session(org_a) as session:
            await force_wallet(session, other_chain, globex.address)
    await chain.pay(globex.address, ETHER)

    await service.sync_deposits(chain_name)
    await service.sync_deposits(other_chain)

    assert await transactions(db, org_a) == []
    assert [(t.wallet_id, t.amount) for t in await transactions(db, org_b)] == [(globex.id, ETHER)]


async def test_a_proof_signed_by_another_key_is_refused(
    service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    target, forger = Account.create(), Account.create()
    challenge = service.control_challenge(org_a, chain_name, target.address)

    with pytest.raises(IsolationViolation, match="signed by another key"):
        await service.register_wallet(
            org_a, chain_name, target.address, proof=sign_challenge(challenge, forger.key)
        )


async def test_a_proof_made_for_another_org_is_refused(
    service: WalletService, chain_name: str, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    globex_key = Account.create()
    # Globex's genuine proof, replayed by Acme.
    proof = sign_challenge(
        service.control_challenge(org_b, chain_name, globex_key.address), globex_key.key
    )

    with pytest.raises(IsolationViolation, match="another organization"):
        await service.register_wallet(org_a, chain_name, globex_key.address, proof=proof)


async def test_an_expired_proof_is_refused(
    service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    key = Account.create()
    issued = datetime.now(UTC) - CHALLENGE_TTL - timedelta(seconds=1)
    proof = sign_challenge(new_challenge(org_a, key.address, now=issued), key.key)

    with pytest.raises(IsolationViolation, match="expired"):
        await service.register_wallet(org_a, chain_name, key.address, proof=proof)


async def test_the_app_role_cannot_ask_who_holds_an_address(
    db: Database, chain_name: str, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = Account.create().address.lower()
    async with db.session(org_b) as session:
        await force_wallet(session, chain_name, address)

    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(
                text("SELECT org_id FROM resolve_wallet(:chain, :address)"),
                {"chain": chain_name, "address": address},
            )


def _checksum(address: str) -> str:
    return str(to_checksum_address(address))
