"""Signing outgoing transactions: the ``Signer`` protocol and an in-memory key signer.

Signing keys never enter the database or a log record: the data layer stores
addresses only, and asks a ``Signer`` (a KMS, an HSM, a custody API, or, in
tests, ``LocalKeySigner``) for the signature of a transaction it has built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from tenancy.chain import SignedTransaction, UnsignedTransaction
from tenancy.errors import InvalidData


class Signer(Protocol):
    """Something that holds keys and signs transactions for the addresses it controls."""

    def can_sign(self, address: str) -> bool:
        """Return whether this signer holds the key of ``address`` (lower-case)."""

    async def sign(self, transaction: UnsignedTransaction) -> SignedTransaction:
        """Return ``transaction`` signed by the key of its sender.

        Raises:
            InvalidData: this signer does not hold the sender's key.
        """


class LocalKeySigner:
    """Signs with private keys held in process memory (tests and development only)."""

    def __init__(self, keys: Iterable[str | bytes] = ()) -> None:
        self._accounts: dict[str, LocalAccount] = {}
        for key in keys:
            self.add_key(key)

    def add_key(self, key: str | bytes) -> str:
        """Hold ``key`` and return its address (lower-case)."""
        account: LocalAccount = Account.from_key(key)
        address = account.address.lower()
        self._accounts[address] = account
        return address

    def can_sign(self, address: str) -> bool:
        """Return whether this signer holds the key of ``address``."""
        return address.lower() in self._accounts

    async def sign(self, transaction: UnsignedTransaction) -> SignedTransaction:
        """Return ``transaction`` signed by its sender's key.

        Raises:
            InvalidData: no key for the sender is held here.
        """
        account = self._accounts.get(transaction.sender.lower())
        if account is None:
            raise InvalidData("no signing key is held for the sending wallet")
        signed = account.sign_transaction(
            {
                "type": 2,
                "chainId": transaction.chain_id,
                "nonce": transaction.nonce,
                "to": to_checksum_address(transaction.to),
                "value": transaction.value,
                "data": transaction.data,
                "gas": transaction.gas,
                "maxFeePerGas": transaction.max_fee_per_gas,
                "maxPriorityFeePerGas": transaction.max_priority_fee_per_gas,
            }
        )
        return SignedTransaction(
            tx_hash="0x" + bytes(signed.hash).hex(), raw=signed.raw_transaction
        )

    def __repr__(self) -> str:
        # Never render keys, even by accident in a traceback or a log line.
        return f"LocalKeySigner(addresses={sorted(self._accounts)})"
