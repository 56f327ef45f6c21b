"""The chain vocabulary: the ``ChainGateway`` protocol, the values it returns, and input parsing.

Services depend on this module only; ``repositories.wallets.web3_gateway`` is the one module
that talks to a node. Addresses leave this module lower-case (the stored form)
and tx hashes as ``0x`` + 64 lower-case hex digits, so comparisons are plain
string equality everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from repositories.errors import ChainError, TransactionRejected
from tenancy.errors import InvalidData
from tenancy.extras import missing_extra

#: The asset name of a chain's own coin (ETH, MATIC, ...); tokens are named by contract address.
NATIVE = "native"

#: ``log_index`` of the native value transfer of a transaction (tokens use the real log index).
NATIVE_LOG_INDEX = -1
#: ``log_index`` of the gas fee a registered wallet paid for a transaction it sent.
FEE_LOG_INDEX = -2

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_address(value: object) -> str:
    """Return an EIP-55 checksummed address in the stored lower-case form.

    The checksum is required: an address typed or pasted with one wrong digit
    would otherwise be accepted, and coins sent there are lost.

    Raises:
        InvalidData: not ``0x`` + 40 hex digits, or the EIP-55 checksum does not match.
    """
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise InvalidData("address must be 0x followed by 40 hex digits")
    try:
        # Imported here: the vocabulary (and the wallet repository that uses it) is
        # importable on a base install; only checking an address needs the extra.
        from eth_utils.address import is_checksum_address
    except ImportError as exc:
        raise missing_extra("chain", exc) from exc
    if not is_checksum_address(value):
        raise InvalidData("address must carry a valid EIP-55 checksum")
    return value.lower()


def parse_tx_hash(value: object) -> str:
    """Return a transaction hash as ``0x`` + 64 lower-case hex digits.

    Raises:
        InvalidData: anything else.
    """
    if not isinstance(value, str) or not _TX_HASH.fullmatch(value):
        raise InvalidData("transaction hash must be 0x followed by 64 hex digits")
    return value.lower()


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block's number and hash, and its parent's hash (lower-case hex)."""

    number: int
    hash: str
    parent_hash: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of value: a transaction's native value, or one ERC-20 ``Transfer`` log.

    Native transfers carry ``log_index == NATIVE_LOG_INDEX`` and may have
    ``amount == 0`` (a contract call): the fee its sender paid still matters.
    ``recipient`` is ``None`` for a contract creation.
    """

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    sender: str
    recipient: str | None
    asset: str
    amount: int

    @property
    def is_native(self) -> bool:
        """Whether this is the native value of a transaction rather than a token log."""
        return self.log_index == NATIVE_LOG_INDEX


@dataclass(frozen=True, slots=True)
class BlockScan:
    """The blocks of a range, in order, and every transfer in them."""

    blocks: list[BlockRef]
    transfers: list[Transfer]


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of a mined transaction."""

    tx_hash: str
    succeeded: bool
    block_number: int
    block_hash: str
    sender: str
    fee: int


@dataclass(frozen=True, slots=True)
class UnsignedTransaction:
    """An EIP-1559 transaction ready to be signed (fields as the signer expects them)."""

    chain_id: int
    nonce: int
    sender: str
    to: str
    value: int
    data: bytes
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A signed transaction: the bytes to broadcast and the hash it will have on chain."""

    tx_hash: str
    raw: bytes


class ChainGateway(Protocol):
    """Read and write access to one chain; every method may raise ``ChainError``."""

    @property
    def chain(self) -> str:
        """The configured name of the chain (``wallets.chain``)."""

    async def block_number(self) -> int:
        """Return the number of the latest block."""

    async def block(self, number: int) -> BlockRef | None:
        """Return block ``number`` of the canonical chain, or ``None`` beyond the head."""

    async def balance(self, address: str, asset: str = NATIVE, *, block: int | None = None) -> int:
        """Return the balance of ``address`` in base units, at ``block`` (default: latest)."""

    async def transfers(
        self, from_block: int, to_block: int, addresses: Collection[str] | None = None
    ) -> list[Transfer]:
        """Return native and configured-token transfers in the inclusive block range.

        With ``addresses`` (lower-case), only transfers from or to one of them.
        """

    async def scan(self, from_block: int, to_block: int) -> BlockScan:
        """Return the blocks of the inclusive range and all their transfers, in chain order."""

    async def receipt(self, tx_hash: str) -> Receipt | None:
        """Return the receipt of ``tx_hash``, or ``None`` while it is not mined."""

    async def confirmations(self, tx_hash: str) -> int:
        """Return how many blocks include and follow ``tx_hash``'s block (0 if not mined)."""

    async def prepare_transfer(
        self, sender: str, recipient: str, asset: str, amount: int
    ) -> UnsignedTransaction:
        """Build a native or token transfer with nonce, gas and fees filled in."""

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction and return its hash.

        Raises:
            TransactionRejected: the node refused it.
        """


__all__ = [
    "FEE_LOG_INDEX",
    "NATIVE",
    "NATIVE_LOG_INDEX",
    "BlockRef",
    "BlockScan",
    "ChainError",
    "ChainGateway",
    "Receipt",
    "SignedTransaction",
    "TransactionRejected",
    "Transfer",
    "UnsignedTransaction",
    "parse_address",
    "parse_tx_hash",
]
