"""Crypto wallets and their on-chain transactions."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from repositories.models.enums import TransactionDirection, TransactionStatus
from tenancy.schema.declarative import Base, TenantOwned, check_in, values

#: The family of every chain this library follows: one key, one address on all of them.
DEFAULT_CHAIN_FAMILY = "evm"
#: Base units (wei, token atoms) exceed bigint; numeric(78,0) holds any uint256.
BASE_UNITS = Numeric(78, 0)


class Wallet(TenantOwned, Base):
    """An on-chain address held by an organization, optionally by one of its agents.

    ``(chain, address)`` is globally unique: an address is derived from a random
    key, so it is a global token, and the deposit scanner must map it to one tenant.
    Its lookup row (``wallet_addresses``) holds it once; the wallet references it.
    One key controls its address on every chain of a family (every EVM chain), so
    the database also keeps a ``(chain_family, address)`` with one organization
    while any of its rows exists: the wallet references its holder row
    (``wallet_address_holders``), whose primary key is the family address. No
    other organization can register it on another chain of the family, and the
    resolver finds only the holder.
    """

    __tablename__ = "wallets"
    __table_args__ = (
        # Canonical lower-case hex; EIP-55 checksums are validated and rendered in Python.
        CheckConstraint("address = lower(address)", name="address_lowercase"),
        ForeignKeyConstraint(
            ["chain", "address", "org_id", "id"],
            [
                "wallet_addresses.chain",
                "wallet_addresses.address",
                "wallet_addresses.org_id",
                "wallet_addresses.wallet_id",
            ],
        ),
        CheckConstraint("chain_family IN ('evm')", name="chain_family"),
        # One organization per family address; the same organization may hold it on
        # several chains, all its wallets there sharing the holder row. A lookup
        # rather than an exclusion (org_id WITH <>), which Citus refuses.
        ForeignKeyConstraint(
            ["chain_family", "address", "org_id"],
            [
                "wallet_address_holders.chain_family",
                "wallet_address_holders.address",
                "wallet_address_holders.org_id",
            ],
        ),
        # The foreign key's check when a holder row goes, and "is any left?".
        Index("ix_wallets_org_id_chain_family_address", "org_id", "chain_family", "address"),
        ForeignKeyConstraint(["org_id", "agent_id"], ["agents.org_id", "agents.id"]),
        Index("ix_wallets_org_id_agent_id", "org_id", "agent_id"),
        Index("ix_wallets_org_id_chain", "org_id", "chain"),
        Index("ix_wallets_org_id_created_at", "org_id", "created_at", "id"),
    )

    agent_id: Mapped[uuid.UUID | None]
    chain: Mapped[str] = mapped_column(String(32))
    chain_family: Mapped[str] = mapped_column(
        String(16), default=DEFAULT_CHAIN_FAMILY, server_default=DEFAULT_CHAIN_FAMILY
    )
    address: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class WalletTransaction(TenantOwned, Base):
    """One transfer into or out of a wallet, recorded once per (chain, tx, log, direction)."""

    __tablename__ = "wallet_transactions"
    __table_args__ = (
        CheckConstraint(check_in("direction", values(TransactionDirection)), name="direction"),
        CheckConstraint(check_in("status", values(TransactionStatus)), name="status"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        ForeignKeyConstraint(
            ["org_id", "wallet_id"], ["wallets.org_id", "wallets.id"], ondelete="CASCADE"
        ),
        UniqueConstraint(
            "org_id",
            "chain",
            "tx_hash",
            "log_index",
            "direction",
            name="uq_wallet_transactions_chain_tx",
        ),
        Index("ix_wallet_transactions_org_id_wallet_id", "org_id", "wallet_id", "status"),
        # For unsettled_wallet_tenants(), which looks across tenants by chain: the
        # transactions from a block on, and the (few) pending ones.
        Index("ix_wallet_transactions_chain_block_number", "chain", "block_number"),
        Index(
            "ix_wallet_transactions_chain_pending",
            "chain",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    wallet_id: Mapped[uuid.UUID]
    chain: Mapped[str] = mapped_column(String(32))
    tx_hash: Mapped[str] = mapped_column(String(66))
    # -1 for the native-coin transfer of a transaction; the log index for token transfers.
    log_index: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    direction: Mapped[str] = mapped_column(String(3))
    asset: Mapped[str] = mapped_column(String(64), default="native", server_default="native")
    amount: Mapped[Decimal] = mapped_column(BASE_UNITS)
    counterparty: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(20), default=TransactionStatus.PENDING.value, server_default="pending"
    )
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    confirmations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
