"""Blocks scanned per second: the gateway alone, and the full deposit scan into the database.

Builds an in-process chain (eth-tester + py-evm) with ``--blocks`` blocks of
``--txs`` transactions each (native payments to registered and unregistered
addresses, and stablecoin mints), registers wallets for several tenants in a
scratch database, then measures:

* ``gateway``: ``Web3Gateway.scan`` over the whole range, in batches, native
  transfers only and with the stablecoin's ``Transfer`` logs;
* ``sync``: ``WalletService.sync_deposits`` from the first block to the head, native
  transfers (resolve owners and keep the checkpoint as ``tenancy_chain``, record
  per tenant as ``tenancy_app``, fees from receipts for the wallets' own
  transactions, store block hashes, advance the checkpoint);
* ``idle pass``: one ``sync_deposits`` with nothing new (the reorg check and head read).

The in-process node answers in microseconds; against a remote JSON-RPC node the
gateway figure is bound by round trips instead (``rpc_concurrency`` requests in flight).

    python -m bench.chain_scan --blocks 150 --txs 6 --out bench/results/chain_scan.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import vyper
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils.exceptions import ValidationError
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from bench.database import bench_database
from repositories import PlatformDatabase
from repositories.models import Organization
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.service import WalletService
from repositories.wallets.web3_gateway import Web3Gateway
from tenancy import Database

TOKEN_SOURCE = Path(__file__).parent.parent / "tests" / "wallets" / "contracts" / "stablecoin.vy"
TENANTS = 4
WALLETS_PER_TENANT = 5
CHAIN = "bench"


async def build_chain(blocks: int, txs: int, wallets: list[str]) -> tuple[AsyncWeb3[Any], str, Any]:
    """Return a chain with ``blocks`` blocks of ``txs`` transactions, and the token address."""
    provider = AsyncEthereumTesterProvider()
    w3 = AsyncWeb3(provider)
    accounts = list(await w3.eth.accounts)
    compiled = vyper.compile_code(TOKEN_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    receipt = await w3.eth.wait_for_transaction_receipt(
        await factory.constructor("Bench USD", "BUSD", 6).transact({"from": accounts[0]})
    )
    token = w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])
    tester = provider.ethereum_tester
    tester.disable_auto_mine_transactions()
    rng = random.Random(7)
    strangers = [Account.create().address for _ in range(50)]
    for _ in range(blocks):
        # One transaction per sender per block: the tester numbers held nonces from the last block.
        for sender in accounts[1 : 1 + txs]:
            target = rng.choice(wallets) if rng.random() < 0.5 else rng.choice(strangers)
            await w3.eth.send_transaction(
                {"from": sender, "to": target, "value": rng.randint(1, 10**15)}
            )
        await token.functions.mint(rng.choice(wallets), rng.randint(1, 10**6)).transact(
            {"from": accounts[0]}
        )
        tester.mine_blocks(1)
    return w3, str(token.address), tester


async def register_wallets(db: Database) -> list[str]:
    """Create the tenants and their wallets; return the wallet addresses (EIP-55)."""
    addresses: list[str] = []
    for _ in range(TENANTS):
        org_id = uuid.uuid4()
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name="bench"))
        async with db.unit_of_work(org_id) as uow:
            for _ in range(WALLETS_PER_TENANT):
                address = Account.create().address
                await uow.wallets.register(CHAIN, address)
                addresses.append(address)
            await uow.commit()
    return addresses


async def timed_scan(gateway: Web3Gateway, head: int, batch: int) -> tuple[float, int]:
    """Scan blocks 0..head in batches; return the seconds taken and the transfers seen."""
    started = time.perf_counter()
    transfers = 0
    for first in range(0, head + 1, batch):
        transfers += len((await gateway.scan(first, min(head, first + batch - 1))).transfers)
    return time.perf_counter() - started, transfers


async def sync_all(service: WalletService, chain: str, head: int) -> tuple[float, int, int]:
    """Run ``sync_deposits`` up to ``head``; return seconds, blocks scanned, rows recorded."""
    started = time.perf_counter()
    scanned = recorded = 0
    while True:
        report = await service.sync_deposits(chain)
        scanned += report.blocks_scanned
        recorded += report.recorded
        if report.last_block >= head:
            return time.perf_counter() - started, scanned, recorded


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_database("tenancy_chain_bench") as settings:
        db = await PlatformDatabase.connect(settings)
        chain_db = await ChainDatabase.connect(settings)
        try:
            wallets = await register_wallets(db)
            started = time.perf_counter()
            w3, token, _ = await build_chain(args.blocks, args.txs, wallets)
            built = time.perf_counter() - started
            rejections = (ValidationError, TesterValidationError, TransactionFailed)
            native = ChainConfig(confirmations=12, scan_batch_blocks=args.batch)
            tokens = native.model_copy(update={"tokens": {"BUSD": token}})
            native_gateway = Web3Gateway(CHAIN, w3, native, rejections=rejections)
            token_gateway = Web3Gateway(CHAIN, w3, tokens, rejections=rejections)
            head = await native_gateway.block_number()

            # The first read of a block makes the tester recover each sender (a node
            # stores it); the second read shows the gateway's own cost.
            cold_seconds, _ = await timed_scan(native_gateway, head, args.batch)
            native_seconds, native_transfers = await timed_scan(native_gateway, head, args.batch)
            # eth-tester answers eth_getLogs by decoding every receipt in Python: slow
            # in-process, one round trip per batch against a node.
            token_seconds, transfers = await timed_scan(token_gateway, head, args.batch)

            chains = ChainSettings(chains={CHAIN: native})
            service = WalletService(db, chain_db, chains, {CHAIN: native_gateway})
            sync_seconds, scanned, recorded = await sync_all(service, CHAIN, head)
            started = time.perf_counter()
            await service.sync_deposits(CHAIN)
            idle_ms = (time.perf_counter() - started) * 1000
        finally:
            await chain_db.dispose()
            await db.dispose()
    blocks = head + 1
    return {
        "blocks": blocks,
        "transactions_per_block": args.txs + 1,
        "native_transfers": native_transfers,
        "all_transfers": transfers,
        "batch_blocks": args.batch,
        "chain_build_seconds": round(built, 2),
        "gateway_native_cold_blocks_per_second": round(blocks / cold_seconds, 1),
        "gateway_native_blocks_per_second": round(blocks / native_seconds, 1),
        "gateway_with_token_logs_blocks_per_second": round(blocks / token_seconds, 1),
        "sync_native_blocks_per_second": round(scanned / sync_seconds, 1),
        "sync_native_recorded": recorded,
        "sync_native_recorded_per_second": round(recorded / sync_seconds, 1),
        "idle_pass_ms": round(idle_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=150)
    parser.add_argument("--txs", type=int, default=6, help="native payments per block (max 9)")
    parser.add_argument("--batch", type=int, default=100, help="blocks per scan pass")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    for name, value in results.items():
        print(f"{name:>28}: {value}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
