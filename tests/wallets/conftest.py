"""Fixtures: a fresh in-process EVM per test, a locally compiled stablecoin, a gateway on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import vyper
from eth_tester import EthereumTester
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils.exceptions import ValidationError
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from repositories import PlatformDatabase
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.service import WalletService
from repositories.wallets.signer import LocalKeySigner
from repositories.wallets.web3_gateway import Web3Gateway
from tenancy import Database, TenancySettings

#: What eth-tester raises where a node would answer with an RPC error.
TESTER_REJECTIONS = (ValidationError, TesterValidationError, TransactionFailed)

TOKEN_SOURCE = Path(__file__).parent / "contracts" / "stablecoin.vy"


class TestChain:
    """Drives the in-process chain: funded accounts, token minting, mining, snapshots."""

    __test__ = False

    def __init__(self, w3: AsyncWeb3[Any], tester: EthereumTester, accounts: list[str]) -> None:
        self.w3 = w3
        self.tester = tester
        # Unlocked, funded accounts. Transactions held for one block need distinct
        # senders: the tester numbers a held sender's nonces from the last mined block.
        self.accounts = accounts
        self.funder = accounts[0]
        self.token: Any = None

    @property
    def token_address(self) -> str:
        """The stablecoin contract address, lower-case."""
        return str(self.token.address).lower()

    async def deploy_token(self, compiled: dict[str, Any]) -> None:
        contract = self.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        tx = await contract.constructor("Test USD", "TUSD", 6).transact({"from": self.funder})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx)
        self.token = self.w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])

    async def pay(self, to: str, value: int, *, sender: str | None = None) -> str:
        """Send ``value`` wei from the funder (an unlocked account) and return the tx hash."""
        tx = await self.w3.eth.send_transaction(
            {"from": sender or self.funder, "to": self.w3.to_checksum_address(to), "value": value}
        )
        return "0x" + bytes(tx).hex()

    async def mint(self, to: str, amount: int) -> str:
        """Mint ``amount`` token units to ``to`` and return the tx hash."""
        tx = await self.token.functions.mint(self.w3.to_checksum_address(to), amount).transact(
            {"from": self.funder}
        )
        return "0x" + bytes(tx).hex()

    async def head(self) -> int:
        return int(await self.w3.eth.block_number)

    def hold_blocks(self) -> None:
        """Queue transactions in one pending block until ``mine()``."""
        self.tester.disable_auto_mine_transactions()

    def mine(self, blocks: int = 1) -> None:
        self.tester.mine_blocks(blocks)

    def auto_mine(self) -> None:
        self.tester.enable_auto_mine_transactions()

    def snapshot(self) -> int:
        return int(self.tester.take_snapshot())

    def revert(self, snapshot: int) -> None:
        self.tester.revert_to_snapshot(snapshot)


@pytest.fixture(scope="session")
def stablecoin() -> dict[str, Any]:
    """ABI and bytecode of the test stablecoin, compiled from the committed Vyper source."""
    compiled: dict[str, Any] = vyper.compile_code(
        TOKEN_SOURCE.read_text(), output_formats=["abi", "bytecode"]
    )
    return compiled


@pytest.fixture
async def chain(stablecoin: dict[str, Any]) -> TestChain:
    """A fresh in-process chain with the stablecoin deployed."""
    provider = AsyncEthereumTesterProvider()
    w3 = AsyncWeb3(provider)
    accounts = list(await w3.eth.accounts)
    test_chain = TestChain(w3, provider.ethereum_tester, accounts)
    await test_chain.deploy_token(stablecoin)
    return test_chain


@pytest.fixture
def chain_name() -> str:
    """A chain name of this test alone: checkpoints and wallets never collide across tests."""
    return f"evm-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def chain_config(chain: TestChain) -> ChainConfig:
    """Settings of the test chain: three confirmations, the stablecoin followed."""
    symbol_address = chain.w3.to_checksum_address(chain.token_address)
    return ChainConfig(confirmations=3, tokens={"TUSD": symbol_address}, reorg_depth=16)


@pytest.fixture
def gateway(chain: TestChain, chain_name: str, chain_config: ChainConfig) -> Web3Gateway:
    """The real gateway over the in-process chain."""
    return Web3Gateway(chain_name, chain.w3, chain_config, rejections=TESTER_REJECTIONS)


@pytest.fixture
def signer() -> LocalKeySigner:
    """Holds the keys of the wallets a test creates (never stored in the database)."""
    return LocalKeySigner()


@pytest.fixture
def outbox_db(db: Database) -> Database:
    """The test ``Database`` with units of work that write their events to the outbox."""
    return PlatformDatabase(db.engine, db.settings)


@pytest.fixture(scope="session")
async def chain_db(settings: TenancySettings) -> AsyncIterator[ChainDatabase]:
    """The chain-wide jobs' connection as ``tenancy_chain`` (verified non-bypassing)."""
    database = await ChainDatabase.connect(settings)
    yield database
    await database.dispose()


@pytest.fixture
def service(
    outbox_db: Database,
    chain_db: ChainDatabase,
    chain_name: str,
    chain_config: ChainConfig,
    gateway: Web3Gateway,
    signer: LocalKeySigner,
) -> WalletService:
    """The wallet service on the test chain: tenant work as ``tenancy_app``, the rest as
    ``tenancy_chain``."""
    settings = ChainSettings(chains={chain_name: chain_config})
    return WalletService(outbox_db, chain_db, settings, {chain_name: gateway}, signer=signer)
