"""What the wallet service's passes report: plain values for callers, logs and metrics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one ``sync_deposits`` pass did; ``skipped`` when another pass held the chain."""

    chain: str
    first_block: int
    last_block: int
    recorded: int = 0
    rewound_to: int | None = None
    skipped: bool = False

    @property
    def blocks_scanned(self) -> int:
        """How many blocks this pass read."""
        return max(0, self.last_block - self.first_block + 1)


@dataclass(frozen=True, slots=True)
class ConfirmationReport:
    """What one ``update_confirmations`` pass changed."""

    confirmed: int = 0
    updated: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ReconciliationLine:
    """One wallet's balance of one asset, as recorded and as the chain holds it."""

    wallet_id: uuid.UUID
    address: str
    asset: str
    recorded: int
    on_chain: int

    @property
    def difference(self) -> int:
        """On-chain minus recorded: positive means the chain holds more than was recorded."""
        return self.on_chain - self.recorded

    @property
    def matches(self) -> bool:
        """Whether the recorded balance equals the chain's."""
        return self.difference == 0


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """Recorded balances compared with the chain at one scanned block."""

    chain: str
    block_number: int
    lines: list[ReconciliationLine] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Whether every line matches."""
        return all(line.matches for line in self.lines)
