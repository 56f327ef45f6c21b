"""Chain-wide bookkeeping of the deposit scanner: not tenant data, so no ``org_id`` and no RLS.

Both tables hold only public chain facts (block numbers and hashes) and the
scanner's position; nothing in them names or reveals a tenant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.schema.declarative import Base, utcnow


class ChainCheckpoint(Base):
    """How far the deposit scan of one chain has read; its row lock serialises scans."""

    __tablename__ = "chain_checkpoints"
    __table_args__ = (CheckConstraint("block_number >= -1", name="block_number"),)

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The last block fully scanned; start_block - 1 before the first scan.
    block_number: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


class ScannedBlock(Base):
    """The hash a scanned block had, kept for the last blocks to detect reorganisations."""

    __tablename__ = "chain_blocks"

    chain: Mapped[str] = mapped_column(
        String(32), ForeignKey("chain_checkpoints.chain", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
