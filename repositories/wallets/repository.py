"""Wallets and their on-chain transactions: registration, idempotent recording, balances.

A transaction is recorded once per ``(chain, tx_hash, log_index, direction)`` in
a tenant: recording it again is a no-op, unless a reorganisation moved it to
another block, in which case the stored block is corrected. Status changes are
conditional updates (``WHERE status = 'pending' ...``), so a concurrent scan,
confirmation pass or rewind can never undo another's transition.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from repositories.base import AsyncRepository
from repositories.domain_events import WalletTransactionRecorded
from repositories.models import Wallet, WalletTransaction
from repositories.models.enums import TransactionDirection, TransactionStatus
from repositories.validation import require_int
from repositories.wallets import address_lookup
from repositories.wallets.chain import NATIVE, NATIVE_LOG_INDEX, parse_address, parse_tx_hash
from repositories.wallets.transaction_events import (
    WalletTransactionConfirmed,
    WalletTransactionDropped,
)
from tenancy.errors import InvalidData, NotFound
from tenancy.specification import Specification

_PENDING = TransactionStatus.PENDING.value
_CONFIRMED = TransactionStatus.CONFIRMED.value
_DROPPED = TransactionStatus.DROPPED.value
_FAILED = TransactionStatus.FAILED.value
_OUT = TransactionDirection.OUT.value
#: Node error messages can be long; the row keeps what explains the failure.
_MAX_ERROR = 1000


@dataclass(frozen=True, slots=True)
class TransactionFacts:
    """What is known of one transfer when it is recorded (hashes and addresses lower-case)."""

    wallet_id: uuid.UUID
    chain: str
    tx_hash: str
    log_index: int
    direction: TransactionDirection
    asset: str
    amount: int
    counterparty: str | None
    block_number: int | None = None
    block_hash: str | None = None
    confirmations: int = 0


class RecordOutcome(StrEnum):
    """What ``record_transaction`` did."""

    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Recorded:
    """The stored transaction and what recording it changed."""

    transaction: WalletTransaction
    outcome: RecordOutcome


class WalletRepository(AsyncRepository[Wallet, uuid.UUID]):
    """Storage of wallets and of the transactions into and out of them.

    An address is unique on its chain across tenants through its lookup row
    (``wallet_addresses``), and held by one organization on every chain of its
    family through its holder row (``wallet_address_holders``); the wallet
    references both. ``add`` writes them first, in the same transaction, and
    ``delete`` removes them with the wallet (the holder row with the
    organization's last wallet on that family address).
    """

    model = Wallet
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "chain": "chain"}
    delete_returns: ClassVar = ("chain", "chain_family", "address")

    # -- wallets -------------------------------------------------------------

    async def register(
        self, chain: str, address: str, *, agent_id: uuid.UUID | None = None, label: str = ""
    ) -> Wallet:
        """Register an EIP-55 ``address`` on ``chain`` for the current tenant.

        Raises:
            InvalidData: the address is malformed or its checksum is wrong.
            Conflict: the address is already registered on this chain (by any tenant),
                or held by another organization on a chain of its family.
            ForeignKeyViolation: ``agent_id`` is not an agent of this tenant.
        """
        stored = parse_address(address)
        if not chain or len(chain) > 32:
            raise InvalidData("chain must be a name of 1 to 32 characters")
        return await self.add(Wallet(chain=chain, address=stored, agent_id=agent_id, label=label))

    async def add(self, obj: Wallet) -> Wallet:
        """Insert a wallet after its address's lookup and holder rows; raise its created event.

        Raises:
            Conflict: the address is already registered on this chain (by any tenant),
                or held by another organization on a chain of its family; nothing is
                written.
            ForeignKeyViolation: its agent is not one of this tenant's.
        """
        await address_lookup.claim(self.session, [obj])
        return await super().add(obj)

    async def add_many(self, objs: Sequence[Wallet]) -> builtins.list[Wallet]:
        """Insert several wallets after their addresses' lookup and holder rows, in one flush.

        Raises:
            Conflict: an address is already registered on its chain, or held by another
                organization on its family; nothing is written.
        """
        await address_lookup.claim(self.session, objs)
        return await super().add_many(objs)

    async def by_address(self, chain: str, address: str) -> Wallet | None:
        """Return this tenant's wallet at ``address`` on ``chain``, or ``None``.

        Raises:
            InvalidData: the address is malformed or its checksum is wrong.
        """
        statement = select(Wallet).where(
            Wallet.chain == chain, Wallet.address == parse_address(address)
        )
        found = (await self._execute(statement)).scalars().first()
        return self._see(found) if found is not None else None

    async def for_agent(self, agent_id: uuid.UUID) -> builtins.list[Wallet]:
        """Return the wallets of one agent."""
        return await self.list(Specification[Wallet](Wallet.agent_id == agent_id))

    async def on_chain(self, chain: str) -> builtins.list[Wallet]:
        """Return the tenant's wallets on ``chain``."""
        return await self.list(Specification[Wallet](Wallet.chain == chain))

    # -- transactions --------------------------------------------------------

    async def record_transaction(self, facts: TransactionFacts) -> Recorded:
        """Record a transfer once; a repeat is a no-op, a move to another block corrects it.

        A payout recorded before broadcast has no block yet: the scan that later
        sees it fills in the block. A token payout is recorded under the native
        log index (its log index is unknown before mining) and takes the real one here.

        Raises:
            InvalidData: malformed tx hash, negative amount.
            ForeignKeyViolation: the wallet is not one of this tenant's.
        """
        parse_tx_hash(facts.tx_hash)
        # Base units are whole (a float 1e18 is not exactly 10**18), and a numeric(78,0) column.
        amount = require_int(facts.amount, "amount", minimum=0, maximum=2**256 - 1)
        if type(facts.amount) is not int:  # a subclass: store and publish the plain value
            facts = replace(facts, amount=amount)
        if facts.asset != NATIVE and facts.direction is TransactionDirection.OUT:
            claimed = await self._claim_token_payout(facts)
            if claimed is not None:
                return Recorded(claimed, RecordOutcome.UPDATED)
        inserted = await self._insert(facts)
        if inserted is not None:
            self._recorded(inserted)
            return Recorded(inserted, RecordOutcome.INSERTED)
        existing = await self._locked_by_key(facts)
        moved = existing.block_hash != facts.block_hash and facts.block_hash is not None
        if existing.status not in (_PENDING, _DROPPED) or not moved:
            return Recorded(existing, RecordOutcome.UNCHANGED)
        was_dropped = existing.status == _DROPPED
        changed = await self._update_one(
            existing.id,
            block_number=facts.block_number,
            block_hash=facts.block_hash,
            confirmations=facts.confirmations,
            status=_PENDING,
        )
        if was_dropped:
            self._recorded(changed)
        return Recorded(changed, RecordOutcome.UPDATED)

    async def transaction(self, transaction_id: uuid.UUID) -> WalletTransaction:
        """Return one transaction of this tenant.

        Raises:
            NotFound: no such transaction is visible.
        """
        statement = select(WalletTransaction).where(WalletTransaction.id == transaction_id)
        found: WalletTransaction | None = (await self._execute(statement)).scalars().first()
        if found is None:
            raise NotFound(f"wallet transaction {transaction_id} not found")
        return found

    async def transactions_by_hash(
        self, chain: str, tx_hash: str
    ) -> builtins.list[WalletTransaction]:
        """Return every recorded transfer of one chain transaction, in log order.

        Raises:
            InvalidData: the hash is malformed.
        """
        statement = (
            select(WalletTransaction)
            .where(
                WalletTransaction.chain == chain,
                WalletTransaction.tx_hash == parse_tx_hash(tx_hash),
            )
            .order_by(WalletTransaction.log_index, WalletTransaction.direction)
        )
        return builtins.list((await self._execute(statement)).scalars())

    async def transactions(
        self, wallet_id: uuid.UUID, *, status: TransactionStatus | None = None
    ) -> builtins.list[WalletTransaction]:
        """Return the transactions of one wallet, oldest block first (unmined last)."""
        statement = select(WalletTransaction).where(WalletTransaction.wallet_id == wallet_id)
        if status is not None:
            statement = statement.where(WalletTransaction.status == status.value)
        statement = statement.order_by(
            WalletTransaction.block_number.asc().nulls_last(),
            WalletTransaction.log_index,
            WalletTransaction.created_at,
        )
        return builtins.list((await self._execute(statement)).scalars())

    async def pending(self, chain: str) -> builtins.list[WalletTransaction]:
        """Return the tenant's pending transactions on ``chain``."""
        statement = select(WalletTransaction).where(
            WalletTransaction.chain == chain, WalletTransaction.status == _PENDING
        )
        return builtins.list((await self._execute(statement)).scalars())

    async def update_confirmations(
        self, transaction_id: uuid.UUID, block_hash: str, confirmations: int, *, confirmed: bool
    ) -> bool:
        """Set the confirmation count of a pending transaction still in block ``block_hash``.

        With ``confirmed`` it becomes ``confirmed`` and counts in the balance.
        Returns ``False`` when the row moved on meanwhile (rewound, failed, confirmed).
        """
        statement = (
            update(WalletTransaction)
            .where(
                WalletTransaction.id == transaction_id,
                WalletTransaction.status == _PENDING,
                WalletTransaction.block_hash == block_hash,
            )
            .values(confirmations=confirmations, status=_CONFIRMED if confirmed else _PENDING)
            .returning(WalletTransaction)
        )
        changed = await self._returning(statement)
        if changed and confirmed:
            tx = changed[0]
            self.loose_events.append(
                WalletTransactionConfirmed(
                    aggregate_id=str(tx.wallet_id),
                    transaction_id=tx.id,
                    chain=tx.chain,
                    tx_hash=tx.tx_hash,
                    direction=tx.direction,
                    asset=tx.asset,
                    amount=str(int(tx.amount)),
                    block_number=int(tx.block_number or 0),
                    confirmations=confirmations,
                )
            )
        return bool(changed)

    async def mark_mined(
        self, transaction_id: uuid.UUID, block_number: int, block_hash: str, confirmations: int
    ) -> bool:
        """Attach the block a pending, not yet mined transaction was included in."""
        statement = (
            update(WalletTransaction)
            .where(
                WalletTransaction.id == transaction_id,
                WalletTransaction.status == _PENDING,
                WalletTransaction.block_hash.is_(None),
            )
            .values(block_number=block_number, block_hash=block_hash, confirmations=confirmations)
            .returning(WalletTransaction.id)
        )
        return (await self._execute(statement)).first() is not None

    async def mark_failed(self, transaction_id: uuid.UUID, error: str) -> WalletTransaction:
        """Move a pending transaction to ``failed`` with the reason.

        Raises:
            NotFound: no such transaction.
            InvalidData: it is not pending (confirmed and failed are final).
        """
        statement = (
            update(WalletTransaction)
            .where(WalletTransaction.id == transaction_id, WalletTransaction.status == _PENDING)
            .values(status=_FAILED, error=error[:_MAX_ERROR])
            .returning(WalletTransaction)
        )
        changed = await self._returning(statement)
        if not changed:
            current = await self.transaction(transaction_id)
            raise InvalidData(f"a {current.status} transaction cannot be marked failed")
        return changed[0]

    async def orphan_after(self, chain: str, block_number: int) -> builtins.list[WalletTransaction]:
        """Detach every transaction in blocks after ``block_number`` (a reorganisation).

        Transfers seen by the scan become ``dropped`` (the scan re-records them if
        the canonical chain has them); the platform's own payouts, recognised by
        their ``out`` row with the native log index, go back to ``pending`` to be
        tracked again. Balances follow, as they count confirmed rows only.
        """
        is_payout = (WalletTransaction.direction == _OUT) & (
            WalletTransaction.log_index == NATIVE_LOG_INDEX
        )
        statement = (
            update(WalletTransaction)
            .where(
                WalletTransaction.chain == chain,
                WalletTransaction.block_number > block_number,
                WalletTransaction.status.in_((_PENDING, _CONFIRMED)),
            )
            .values(
                status=case((is_payout, _PENDING), else_=_DROPPED),
                block_number=None,
                block_hash=None,
                confirmations=0,
            )
            .returning(WalletTransaction)
        )
        orphaned = await self._returning(statement)
        for tx in orphaned:
            self.loose_events.append(
                WalletTransactionDropped(
                    aggregate_id=str(tx.wallet_id),
                    transaction_id=tx.id,
                    chain=tx.chain,
                    tx_hash=tx.tx_hash,
                    orphaned_block=block_number + 1,
                    status=tx.status,
                )
            )
        return orphaned

    # -- balances ------------------------------------------------------------

    async def balance(self, wallet_id: uuid.UUID, asset: str = NATIVE) -> int:
        """Return the confirmed balance of one asset: confirmed in minus confirmed out."""
        return (await self.balances(wallet_id)).get(asset, 0)

    async def balances(
        self, wallet_id: uuid.UUID, *, through_block: int | None = None
    ) -> dict[str, int]:
        """Return the balance per asset from confirmed transactions.

        With ``through_block``, the balance the chain held after that block:
        confirmed and pending transfers included in it or earlier.
        """
        signed = case(
            (WalletTransaction.direction == _OUT, -WalletTransaction.amount),
            else_=WalletTransaction.amount,
        )
        statement = select(WalletTransaction.asset, func.sum(signed)).where(
            WalletTransaction.wallet_id == wallet_id
        )
        if through_block is None:
            statement = statement.where(WalletTransaction.status == _CONFIRMED)
        else:
            statement = statement.where(
                WalletTransaction.status.in_((_PENDING, _CONFIRMED)),
                WalletTransaction.block_number <= through_block,
            )
        rows = (await self._execute(statement.group_by(WalletTransaction.asset))).all()
        return {asset: int(total) for asset, total in rows}

    # -- statements ----------------------------------------------------------

    async def _after_delete(self, deleted: Sequence[Any]) -> None:
        # After the wallets, which reference these rows: the address is free again.
        await address_lookup.release(self.session, deleted)

    async def _insert(self, facts: TransactionFacts) -> WalletTransaction | None:
        statement = (
            pg_insert(WalletTransaction)
            .values(
                id=uuid.uuid4(),
                wallet_id=facts.wallet_id,
                chain=facts.chain,
                tx_hash=facts.tx_hash,
                log_index=facts.log_index,
                direction=facts.direction.value,
                asset=facts.asset,
                amount=facts.amount,
                counterparty=facts.counterparty,
                status=_PENDING,
                block_number=facts.block_number,
                block_hash=facts.block_hash,
                confirmations=facts.confirmations,
            )
            .on_conflict_do_nothing(constraint="uq_wallet_transactions_chain_tx")
            .returning(WalletTransaction)
        )
        rows = await self._returning(statement)
        return rows[0] if rows else None

    async def _claim_token_payout(self, facts: TransactionFacts) -> WalletTransaction | None:
        # The payout row may already carry this block (confirmed from its receipt):
        # then only the log index changes; another block resets it to pending.
        same_block = WalletTransaction.block_hash == facts.block_hash
        statement = (
            update(WalletTransaction)
            .where(
                WalletTransaction.chain == facts.chain,
                WalletTransaction.tx_hash == facts.tx_hash,
                WalletTransaction.log_index == NATIVE_LOG_INDEX,
                WalletTransaction.direction == _OUT,
                WalletTransaction.asset == facts.asset,
                WalletTransaction.status.in_((_PENDING, _CONFIRMED)),
            )
            .values(
                log_index=facts.log_index,
                block_number=facts.block_number,
                block_hash=facts.block_hash,
                confirmations=case(
                    (same_block, WalletTransaction.confirmations), else_=facts.confirmations
                ),
                status=case((same_block, WalletTransaction.status), else_=_PENDING),
            )
            .returning(WalletTransaction)
        )
        rows = await self._returning(statement)
        return rows[0] if rows else None

    async def _locked_by_key(self, facts: TransactionFacts) -> WalletTransaction:
        statement = (
            select(WalletTransaction)
            .where(
                WalletTransaction.chain == facts.chain,
                WalletTransaction.tx_hash == facts.tx_hash,
                WalletTransaction.log_index == facts.log_index,
                WalletTransaction.direction == facts.direction.value,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        existing: WalletTransaction = (await self._execute(statement)).scalars().one()
        return existing

    async def _update_one(self, transaction_id: uuid.UUID, **values: Any) -> WalletTransaction:
        statement = (
            update(WalletTransaction)
            .where(WalletTransaction.id == transaction_id)
            .values(**values)
            .returning(WalletTransaction)
        )
        return (await self._returning(statement))[0]

    async def _returning(self, statement: Any) -> builtins.list[WalletTransaction]:
        orm = select(WalletTransaction).from_statement(statement)
        result = await self._execute(orm.execution_options(populate_existing=True))
        return builtins.list(result.scalars())

    def _recorded(self, tx: WalletTransaction) -> None:
        self.loose_events.append(
            WalletTransactionRecorded(
                aggregate_id=str(tx.wallet_id),
                transaction_id=tx.id,
                chain=tx.chain,
                tx_hash=tx.tx_hash,
                direction=tx.direction,
                amount=str(int(tx.amount)),
                status=tx.status,
            )
        )
