"""Signing outgoing transactions: the ``Signer`` protocol and an in-memory key signer.

Signing keys never enter the database or a log record: the data layer stores
addresses only, and asks a ``Signer`` (a KMS, an HSM, a custody API, or, in
tests, ``LocalKeySigner``) for the signature of a transaction it has built.

A key belongs to one organization: it is provisioned for ``(org_id, chain
family, address)``, and the signer signs for that organization alone. Being
asked by another organization is refused, whatever wallet rows the database
holds: one EVM key controls its address on every EVM chain, so a wallet row on
another chain (or one re-registered after the owner deleted its own) must not
be enough to spend with it.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from tenancy.extras import missing_extra

try:
    from eth_account import Account
    from eth_account.signers.local import LocalAccount
    from eth_utils.address import to_checksum_address
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("chain", exc) from exc

from repositories.wallets.chain import SignedTransaction, UnsignedTransaction
from repositories.wallets.custody import EVM
from tenancy.errors import IsolationViolation


class Signer(Protocol):
    """Holds keys per organization and signs transactions for the addresses it controls."""

    @property
    def family(self) -> str:
        """The chain family whose keys this signer holds (``"evm"``)."""

    async def provision(self, org_id: uuid.UUID) -> str:
        """Create a key for ``org_id`` and return its address (lower-case)."""

    def can_sign(self, org_id: uuid.UUID, address: str) -> bool:
        """Return whether this signer holds the key of ``address`` for ``org_id``."""

    async def sign(self, org_id: uuid.UUID, transaction: UnsignedTransaction) -> SignedTransaction:
        """Return ``transaction`` signed by the key of its sender, for ``org_id``.

        Raises:
            IsolationViolation: no key of the sender was provisioned for ``org_id``.
        """


class LocalKeySigner:
    """Signs with private keys held in process memory (tests and development only)."""

    family = EVM

    def __init__(self) -> None:
        # address -> (organization, key): one holder per address, as in a custody API.
        self._keys: dict[str, tuple[uuid.UUID, LocalAccount]] = {}

    def add_key(self, org_id: uuid.UUID, key: str | bytes) -> str:
        """Hold ``key`` for ``org_id`` and return its address (lower-case).

        Raises:
            IsolationViolation: the key is already held for another organization.
        """
        account: LocalAccount = Account.from_key(key)
        address = account.address.lower()
        held = self._keys.get(address)
        if held is not None and held[0] != org_id:
            raise IsolationViolation("this key is held for another organization")
        self._keys[address] = (org_id, account)
        return address

    async def provision(self, org_id: uuid.UUID) -> str:
        """Create a key for ``org_id`` and return its address (lower-case)."""
        return self.add_key(org_id, Account.create().key)

    def can_sign(self, org_id: uuid.UUID, address: str) -> bool:
        """Return whether this signer holds the key of ``address`` for ``org_id``."""
        held = self._keys.get(address.lower())
        return held is not None and held[0] == org_id

    async def sign(self, org_id: uuid.UUID, transaction: UnsignedTransaction) -> SignedTransaction:
        """Return ``transaction`` signed by its sender's key, for ``org_id``.

        Raises:
            IsolationViolation: the sender's key was not provisioned for ``org_id``
                (held for another organization, or not held here at all: the
                same refusal, so it reveals nothing about other organizations).
        """
        held = self._keys.get(transaction.sender.lower())
        if held is None or held[0] != org_id:
            raise IsolationViolation("no signing key of this organization controls the sender")
        account = held[1]
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
        return f"LocalKeySigner(addresses={sorted(self._keys)})"
