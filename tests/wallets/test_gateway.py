"""Web3Gateway against the in-process EVM: blocks, transfers, receipts, balances, broadcasts."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from repositories.wallets.chain import NATIVE, NATIVE_LOG_INDEX, ChainError, TransactionRejected
from repositories.wallets.chain_settings import ChainConfig
from repositories.wallets.web3_gateway import Web3Gateway
from tests.wallets.support import sign_with

ETHER = 10**18


async def test_block_number_follows_the_chain(chain: Any, gateway: Web3Gateway) -> None:
    before = await gateway.block_number()
    chain.mine(3)
    assert await gateway.block_number() == before + 3


async def test_block_beyond_the_head_is_none(gateway: Web3Gateway) -> None:
    assert await gateway.block(await gateway.block_number() + 1) is None


async def test_block_links_to_its_parent(chain: Any, gateway: Web3Gateway) -> None:
    chain.mine(2)
    head = await gateway.block_number()
    block, parent = await gateway.block(head), await gateway.block(head - 1)
    assert block is not None
    assert parent is not None
    assert block.parent_hash == parent.hash


async def test_native_transfer_is_found_with_its_block(chain: Any, gateway: Web3Gateway) -> None:
    recipient = Account.create().address
    tx_hash = await chain.pay(recipient, ETHER)
    head = await gateway.block_number()

    transfers = await gateway.transfers(head, head)

    block = await gateway.block(head)
    assert block is not None
    [transfer] = [t for t in transfers if t.tx_hash == tx_hash]
    assert transfer.recipient == recipient.lower()
    assert transfer.sender == chain.funder.lower()
    assert (transfer.asset, transfer.amount) == (NATIVE, ETHER)
    assert transfer.log_index == NATIVE_LOG_INDEX
    assert (transfer.block_number, transfer.block_hash) == (head, block.hash)


async def test_token_transfer_is_decoded_from_its_log(chain: Any, gateway: Web3Gateway) -> None:
    recipient = Account.create().address
    tx_hash = await chain.mint(recipient, 2_500_000)
    head = await gateway.block_number()

    transfers = await gateway.transfers(head, head)

    [token] = [t for t in transfers if t.tx_hash == tx_hash and not t.is_native]
    assert token.asset == chain.token_address
    assert token.recipient == recipient.lower()
    assert token.sender == "0x" + "00" * 20
    assert token.amount == 2_500_000
    assert token.log_index >= 0


async def test_transfers_of_several_blocks_come_in_chain_order(
    chain: Any, gateway: Web3Gateway
) -> None:
    start = await gateway.block_number() + 1
    hashes = [await chain.pay(Account.create().address, n + 1) for n in range(3)]

    transfers = await gateway.transfers(start, start + 2)

    assert [t.tx_hash for t in transfers] == hashes


async def test_address_filter_keeps_only_matching_transfers(
    chain: Any, gateway: Web3Gateway
) -> None:
    start = await gateway.block_number() + 1
    wanted, other = Account.create().address, Account.create().address
    await chain.pay(wanted, 5)
    await chain.pay(other, 7)
    await chain.mint(wanted, 9)

    transfers = await gateway.transfers(start, start + 2, {wanted.lower()})

    assert {(t.asset, t.amount) for t in transfers} == {(NATIVE, 5), (chain.token_address, 9)}


async def test_unmined_transaction_has_no_receipt(chain: Any, gateway: Web3Gateway) -> None:
    chain.hold_blocks()
    tx_hash = await chain.pay(Account.create().address, 1)

    assert await gateway.receipt(tx_hash) is None
    assert await gateway.confirmations(tx_hash) == 0


async def test_receipt_reports_outcome_and_fee(chain: Any, gateway: Web3Gateway) -> None:
    tx_hash = await chain.pay(Account.create().address, 1)

    receipt = await gateway.receipt(tx_hash)

    assert receipt is not None
    assert receipt.succeeded
    assert receipt.sender == chain.funder.lower()
    assert receipt.fee > 0
    assert receipt.block_number == await gateway.block_number()


async def test_confirmations_grow_as_blocks_are_mined(chain: Any, gateway: Web3Gateway) -> None:
    tx_hash = await chain.pay(Account.create().address, 1)
    assert await gateway.confirmations(tx_hash) == 1

    chain.mine(4)

    assert await gateway.confirmations(tx_hash) == 5


async def test_balances_of_native_coin_and_token(chain: Any, gateway: Web3Gateway) -> None:
    holder = Account.create().address
    await chain.pay(holder, 3 * ETHER)
    await chain.mint(holder, 42)

    assert await gateway.balance(holder.lower()) == 3 * ETHER
    assert await gateway.balance(holder.lower(), chain.token_address) == 42


async def test_balance_at_an_earlier_block(chain: Any, gateway: Web3Gateway) -> None:
    holder = Account.create().address
    await chain.pay(holder, 1)
    first = await gateway.block_number()
    await chain.pay(holder, 2)

    assert await gateway.balance(holder.lower(), block=first) == 1


async def test_signed_native_transfer_is_broadcast_and_mined(
    chain: Any, gateway: Web3Gateway
) -> None:
    key = Account.create()
    await chain.pay(key.address, ETHER)
    recipient = Account.create().address

    prepared = await gateway.prepare_transfer(
        key.address.lower(), recipient.lower(), NATIVE, ETHER // 4
    )
    signed = await sign_with(key.key, prepared)
    tx_hash = await gateway.send_raw_transaction(signed.raw)

    assert tx_hash == signed.tx_hash
    assert await gateway.balance(recipient.lower()) == ETHER // 4


async def test_signed_token_transfer_moves_tokens(chain: Any, gateway: Web3Gateway) -> None:
    key = Account.create()
    await chain.pay(key.address, ETHER)
    await chain.mint(key.address, 1_000)
    recipient = Account.create().address.lower()

    prepared = await gateway.prepare_transfer(
        key.address.lower(), recipient, chain.token_address, 400
    )
    await gateway.send_raw_transaction((await sign_with(key.key, prepared)).raw)

    assert await gateway.balance(recipient, chain.token_address) == 400


async def test_broadcast_without_funds_is_rejected(chain: Any, gateway: Web3Gateway) -> None:
    key = Account.create()
    prepared = await gateway.prepare_transfer(
        key.address.lower(), Account.create().address.lower(), NATIVE, ETHER
    )
    signed = await sign_with(key.key, prepared)

    with pytest.raises(TransactionRejected, match="afford"):
        await gateway.send_raw_transaction(signed.raw)


async def test_token_transfer_beyond_balance_is_rejected_before_signing(
    chain: Any, gateway: Web3Gateway
) -> None:
    key = Account.create()
    await chain.pay(key.address, ETHER)

    with pytest.raises(TransactionRejected):
        await gateway.prepare_transfer(
            key.address.lower(), Account.create().address.lower(), chain.token_address, 1
        )


async def test_unreachable_node_is_a_chain_error() -> None:
    # Port 9 (discard) is closed here: the connection is refused at once.
    config = ChainConfig(rpc_url="http://127.0.0.1:9", request_timeout=2)
    gateway = Web3Gateway.over_http("offline", config)

    try:
        with pytest.raises(ChainError, match="offline"):
            await gateway.block_number()
    finally:
        await gateway.close()


def test_http_gateway_needs_an_rpc_url() -> None:
    with pytest.raises(ChainError, match="rpc_url"):
        Web3Gateway.over_http("nowhere", ChainConfig())


async def test_node_of_another_chain_is_refused(chain: Any, chain_name: str) -> None:
    gateway = Web3Gateway(chain_name, chain.w3, ChainConfig(chain_id=1))

    with pytest.raises(ChainError, match="chain id"):
        await gateway.verify_chain_id()


async def test_request_the_node_refuses_is_a_chain_error(gateway: Web3Gateway) -> None:
    with pytest.raises(ChainError, match="eth_getBalance"):
        await gateway.balance(Account.create().address.lower(), block=-1)
