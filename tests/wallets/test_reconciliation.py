"""Reconciliation: recorded balances against the chain's, per wallet and asset."""

from __future__ import annotations

import uuid
from typing import Any

from eth_account import Account

from repositories.wallets.chain import NATIVE
from repositories.wallets.service import WalletService
from repositories.wallets.signer import LocalKeySigner
from tests.wallets.support import ETHER, checksummed, new_wallet, register_proven


async def test_recorded_balances_match_the_chain_after_deposits_payouts_and_fees(
    chain: Any,
    service: WalletService,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    wallet = await new_wallet(service, org_a, chain_name, signer)
    other = await new_wallet(service, org_a, chain_name, signer)
    await chain.pay(wallet.address, 3 * ETHER)
    await chain.mint(wallet.address, 5_000)
    await service.send_payout(org_a, wallet.id, Account.create().address, ETHER)
    await service.send_payout(
        org_a, wallet.id, checksummed(other), 2_000, asset=chain.token_address
    )
    chain.mine(3)
    await service.sync_deposits(chain_name)
    await service.update_confirmations(chain_name)

    report = await service.reconcile(org_a, chain_name)

    assert report.matches
    on_chain = {(line.wallet_id, line.asset): line.on_chain for line in report.lines}
    assert on_chain[(other.id, chain.token_address)] == 2_000
    assert 0 < on_chain[(wallet.id, NATIVE)] < 2 * ETHER


async def test_value_received_before_registration_shows_as_a_difference(
    chain: Any, service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    account = Account.create()
    await chain.pay(account.address, ETHER)
    await service.sync_deposits(chain_name)
    wallet = await register_proven(service, org_a, chain_name, account)
    await chain.pay(account.address, 2 * ETHER)
    await service.sync_deposits(chain_name)

    report = await service.reconcile(org_a, chain_name)

    [native] = [line for line in report.lines if line.asset == NATIVE]
    assert native.wallet_id == wallet.id
    assert (native.recorded, native.on_chain, native.difference) == (2 * ETHER, 3 * ETHER, ETHER)
    assert not report.matches


async def test_reconciliation_covers_only_the_tenants_own_wallets(
    chain: Any, service: WalletService, chain_name: str, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    mine = await new_wallet(service, org_a, chain_name)
    await new_wallet(service, org_b, chain_name)

    report = await service.reconcile(org_a, chain_name)

    assert {line.wallet_id for line in report.lines} == {mine.id}
