"""``Web3Gateway``: the one module that talks to a chain, through web3.py's ``AsyncWeb3``.

Production builds it from ``ChainConfig`` with an HTTP JSON-RPC provider; tests
hand in an ``AsyncWeb3`` over the in-process ``AsyncEthereumTesterProvider``.
Every failure of the node leaves as ``ChainError`` (``TransactionRejected`` when
a broadcast is refused), so callers never see web3's exception zoo.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self, cast

from aiohttp import ClientError, ClientTimeout

from tenancy.extras import missing_extra

try:
    from eth_utils.address import to_checksum_address
    from web3 import AsyncHTTPProvider, AsyncWeb3
    from web3.exceptions import BlockNotFound, TransactionNotFound, Web3Exception
    from web3.types import BlockIdentifier, FilterParams, LogReceipt, TxParams
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("chain", exc) from exc

from repositories.wallets.chain import (
    NATIVE,
    NATIVE_LOG_INDEX,
    BlockRef,
    BlockScan,
    ChainError,
    Receipt,
    TransactionRejected,
    Transfer,
    UnsignedTransaction,
    parse_tx_hash,
)
from repositories.wallets.chain_settings import ChainConfig

#: keccak256("Transfer(address,address,uint256)"): topic 0 of every ERC-20 transfer.
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
#: Selectors of balanceOf(address) and transfer(address,uint256).
_BALANCE_OF = bytes.fromhex("70a08231")
_TRANSFER = bytes.fromhex("a9059cbb")
#: Gas of a plain value transfer to an account without code.
_PLAIN_TRANSFER_GAS = 21_000

_NODE_ERRORS = (Web3Exception, ClientError, OSError, TimeoutError)


class Web3Gateway:
    """A ``ChainGateway`` over ``AsyncWeb3``, following the tokens named in ``config``."""

    def __init__(
        self,
        chain: str,
        w3: AsyncWeb3[Any],
        config: ChainConfig,
        *,
        rejections: tuple[type[Exception], ...] = (),
    ) -> None:
        """Wrap ``w3``; ``rejections`` adds the exception types its provider raises on refusal.

        A JSON-RPC node refuses with an RPC error (``Web3Exception``). In-process
        providers raise their own types instead (eth-tester: ``ValidationError``,
        ``TransactionFailed``); the caller that builds one names them here, so this
        module never imports a test library.
        """
        self._rejections: tuple[type[Exception], ...] = (Web3Exception, *rejections)
        self._read_errors: tuple[type[BaseException], ...] = (*_NODE_ERRORS, *rejections)
        self._chain = chain
        self._w3 = w3
        self._config = config
        self._tokens = sorted(config.token_addresses())
        self._limit = asyncio.Semaphore(config.rpc_concurrency)
        self._http: AsyncHTTPProvider | None = None

    @classmethod
    def over_http(cls, chain: str, config: ChainConfig) -> Self:
        """Build a gateway on the node at ``config.rpc_url`` (no request is made yet).

        Raises:
            ChainError: the chain has no ``rpc_url`` configured.
        """
        if not config.rpc_url:
            raise ChainError(f"chain {chain!r} has no rpc_url configured")
        provider = AsyncHTTPProvider(
            config.rpc_url, request_kwargs={"timeout": ClientTimeout(total=config.request_timeout)}
        )
        gateway = cls(chain, AsyncWeb3(provider), config)
        gateway._http = provider
        return gateway

    async def close(self) -> None:
        """Close the HTTP session of an ``over_http`` gateway (others own their provider)."""
        if self._http is not None:
            await self._http.disconnect()

    @property
    def chain(self) -> str:
        """The configured name of the chain."""
        return self._chain

    async def verify_chain_id(self) -> None:
        """Refuse a node that serves another chain than the configured ``chain_id``.

        Raises:
            ChainError: the ids differ, or the node cannot be reached.
        """
        async with self._rpc("eth_chainId"):
            actual = await self._w3.eth.chain_id
        if self._config.chain_id is not None and actual != self._config.chain_id:
            raise ChainError(
                f"node for {self._chain!r} serves chain id {actual}, "
                f"expected {self._config.chain_id}"
            )

    async def block_number(self) -> int:
        """Return the number of the latest block."""
        async with self._rpc("eth_blockNumber"):
            return int(await self._w3.eth.block_number)

    async def block(self, number: int) -> BlockRef | None:
        """Return block ``number`` of the canonical chain, or ``None`` beyond the head."""
        async with self._rpc("eth_getBlockByNumber"):
            try:
                data = await self._w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return BlockRef(number, _hex(data["hash"]), _hex(data["parentHash"]))

    async def balance(self, address: str, asset: str = NATIVE, *, block: int | None = None) -> int:
        """Return the balance of ``address`` in base units, at ``block`` (default: latest)."""
        at: BlockIdentifier = "latest" if block is None else block
        account = to_checksum_address(address)
        if asset == NATIVE:
            async with self._rpc("eth_getBalance"):
                return int(await self._w3.eth.get_balance(account, at))
        call: TxParams = {
            "to": to_checksum_address(asset),
            "data": _BALANCE_OF + _word(int(address, 16)),
        }
        async with self._rpc("eth_call"):
            result = await self._w3.eth.call(call, at)
        return int.from_bytes(result, "big") if result else 0

    async def transfers(
        self, from_block: int, to_block: int, addresses: Collection[str] | None = None
    ) -> list[Transfer]:
        """Return native and configured-token transfers in the inclusive block range.

        With ``addresses`` (lower-case), only transfers from or to one of them.
        """
        found = (await self.scan(from_block, to_block)).transfers
        if addresses is None:
            return found
        wanted = set(addresses)
        return [t for t in found if t.sender in wanted or t.recipient in wanted]

    async def scan(self, from_block: int, to_block: int) -> BlockScan:
        """Return the blocks of the inclusive range and all their transfers, in chain order.

        Native transfers come from the blocks' transactions (value moved by
        internal calls is not visible without a tracing node); token transfers from
        the followed contracts' ``Transfer`` logs.
        """
        if to_block < from_block:
            return BlockScan([], [])
        numbers = range(from_block, to_block + 1)
        blocks = await asyncio.gather(*(self._full_block(n) for n in numbers))
        found = [t for block in blocks for t in _native_transfers(block)]
        if self._tokens:
            found.extend(await self._token_transfers(from_block, to_block))
        found.sort(key=lambda t: (t.block_number, t.log_index >= 0, t.log_index))
        refs = [BlockRef(int(b["number"]), _hex(b["hash"]), _hex(b["parentHash"])) for b in blocks]
        return BlockScan(refs, found)

    async def receipt(self, tx_hash: str) -> Receipt | None:
        """Return the receipt of ``tx_hash``, or ``None`` while it is not mined."""
        async with self._rpc("eth_getTransactionReceipt"):
            try:
                data = await self._w3.eth.get_transaction_receipt(parse_tx_hash(tx_hash))  # type: ignore[arg-type]  # a validated 0x hex string is a HexStr
            except TransactionNotFound:
                return None
        return Receipt(
            tx_hash=_hex(data["transactionHash"]),
            succeeded=data["status"] == 1,
            block_number=int(data["blockNumber"]),
            block_hash=_hex(data["blockHash"]),
            sender=str(data["from"]).lower(),
            fee=int(data["gasUsed"]) * int(data["effectiveGasPrice"]),
        )

    async def confirmations(self, tx_hash: str) -> int:
        """Return how many blocks include and follow ``tx_hash``'s block (0 if not mined)."""
        receipt = await self.receipt(tx_hash)
        if receipt is None:
            return 0
        return max(0, await self.block_number() - receipt.block_number + 1)

    async def prepare_transfer(
        self, sender: str, recipient: str, asset: str, amount: int
    ) -> UnsignedTransaction:
        """Build an EIP-1559 native or token transfer with nonce, gas and fees filled in.

        Raises:
            TransactionRejected: a token transfer would revert (e.g. too small a balance).
            ChainError: the node cannot be reached.
        """
        if asset == NATIVE:
            to, value, data = recipient, amount, b""
        else:
            to, value, data = asset, 0, _TRANSFER + _word(int(recipient, 16)) + _word(amount)
        async with self._rpc("eth_getTransactionCount"):
            nonce = await self._w3.eth.get_transaction_count(to_checksum_address(sender), "pending")
            chain_id = await self._w3.eth.chain_id
            priority = int(await self._w3.eth.max_priority_fee)
            latest = await self._w3.eth.get_block("latest")
            code = await self._w3.eth.get_code(to_checksum_address(to))
        gas = _PLAIN_TRANSFER_GAS if not code else await self._estimate(sender, to, value, data)
        # Twice the base fee rides out several full blocks of base-fee growth.
        max_fee = 2 * int(latest.get("baseFeePerGas", 0)) + priority
        return UnsignedTransaction(
            chain_id=int(chain_id),
            nonce=int(nonce),
            sender=sender,
            to=to,
            value=value,
            data=data,
            gas=gas,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=priority,
        )

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction and return its hash.

        Raises:
            TransactionRejected: the node refused it; the message says why.
            ChainError: the node cannot be reached.
        """
        try:
            tx_hash = await self._w3.eth.send_raw_transaction(raw)
        except self._rejections as exc:
            # Not accepted, so not broadcast: nothing of it can appear on chain.
            raise TransactionRejected(_reason(exc)) from exc
        except _NODE_ERRORS as exc:
            raise ChainError(f"{self._chain}: eth_sendRawTransaction failed: {exc!r}") from exc
        return _hex(tx_hash)

    async def _estimate(self, sender: str, to: str, value: int, data: bytes) -> int:
        call: TxParams = {
            "from": to_checksum_address(sender),
            "to": to_checksum_address(to),
            "value": value,  # type: ignore[typeddict-item]  # Wei is an int NewType
            "data": data,
        }
        try:
            return int(await self._w3.eth.estimate_gas(call))
        except self._rejections as exc:
            raise TransactionRejected(_reason(exc)) from exc

    async def _full_block(self, number: int) -> Mapping[str, Any]:
        async with self._limit, self._rpc("eth_getBlockByNumber"):
            return cast(Mapping[str, Any], await self._w3.eth.get_block(number, True))

    async def _token_transfers(self, from_block: int, to_block: int) -> list[Transfer]:
        params: FilterParams = {
            "fromBlock": from_block,
            "toBlock": to_block,
            "address": [to_checksum_address(t) for t in self._tokens],
            "topics": [TRANSFER_TOPIC],
        }
        async with self._limit, self._rpc("eth_getLogs"):
            logs = await self._w3.eth.get_logs(params)
        return [t for t in map(_token_transfer, logs) if t is not None]

    @asynccontextmanager
    async def _rpc(self, method: str) -> AsyncIterator[None]:
        try:
            yield
        except (BlockNotFound, TransactionNotFound):
            raise
        except self._read_errors as exc:
            raise ChainError(f"{self._chain}: {method} failed: {exc!r}") from exc


def _native_transfers(block: Mapping[str, Any]) -> list[Transfer]:
    number, block_hash = int(block["number"]), _hex(block["hash"])
    transfers = []
    for tx in cast(Sequence[Mapping[str, Any]], block["transactions"]):
        to = tx.get("to")
        transfers.append(
            Transfer(
                tx_hash=_hex(tx["hash"]),
                log_index=NATIVE_LOG_INDEX,
                block_number=number,
                block_hash=block_hash,
                sender=str(tx["from"]).lower(),
                recipient=str(to).lower() if to else None,
                asset=NATIVE,
                amount=int(tx["value"]),
            )
        )
    return transfers


def _token_transfer(log: LogReceipt) -> Transfer | None:
    topics = log["topics"]
    # ERC-721 uses the same event with the token id indexed (four topics): not ours.
    if log.get("removed") or len(topics) != 3 or len(log["data"]) != 32:
        return None
    return Transfer(
        tx_hash=_hex(log["transactionHash"]),
        log_index=int(log["logIndex"]),
        block_number=int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]),
        sender="0x" + bytes(topics[1])[-20:].hex(),
        recipient="0x" + bytes(topics[2])[-20:].hex(),
        asset=str(log["address"]).lower(),
        amount=int.from_bytes(log["data"], "big"),
    )


def _hex(value: bytes | str) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _reason(exc: BaseException) -> str:
    # RPC errors carry the node's message in args[0] (a dict or a string).
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, dict):
        detail = detail.get("message", detail)
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    return text[:500]
