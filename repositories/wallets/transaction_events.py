"""Events of on-chain wallet transactions after they were first recorded.

``WalletTransactionRecorded`` lives with the other domain events in
``tenancy.events.domain_event``; these follow a transaction on through confirmation,
reorganisation and payout. The aggregate is the wallet, so every event of one
wallet keeps its order downstream. Amounts are decimal strings of base units
(a uint256 does not fit a JSON number).
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from tenancy.events.domain_event import DomainEvent


class WalletTransactionConfirmed(DomainEvent):
    """A transaction reached the chain's confirmation depth; it now counts in the balance."""

    aggregate_type: ClassVar[str] = "wallet"

    transaction_id: uuid.UUID
    chain: str
    tx_hash: str
    direction: str
    asset: str
    amount: str
    block_number: int
    confirmations: int


class WalletTransactionDropped(DomainEvent):
    """A reorganisation orphaned the block of a transaction; it no longer counts.

    ``status`` is ``dropped`` for transfers seen by the scan (re-recorded if the
    canonical chain includes them again), ``pending`` for the platform's own payouts.
    """

    aggregate_type: ClassVar[str] = "wallet"

    transaction_id: uuid.UUID
    chain: str
    tx_hash: str
    orphaned_block: int
    status: str


class PayoutSent(DomainEvent):
    """A payout was signed, recorded and accepted by the node for broadcast."""

    aggregate_type: ClassVar[str] = "wallet"

    transaction_id: uuid.UUID
    chain: str
    tx_hash: str
    recipient: str
    asset: str
    amount: str


class PayoutFailed(DomainEvent):
    """A payout was refused by the node or reverted on chain; ``error`` says why."""

    aggregate_type: ClassVar[str] = "wallet"

    transaction_id: uuid.UUID
    chain: str
    tx_hash: str
    error: str
