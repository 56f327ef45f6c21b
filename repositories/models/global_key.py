"""Global keys as lookup tables: each token or address once, with the tenant and row it names.

On Citus the tenant tables are distributed by ``org_id``, and a unique key that
leaves the distribution column out is refused. So each global key lives in a
table of its own (a reference table on Citus) whose primary key is the key,
with a ``UNIQUE (key..., org_id, row id)`` that the owning row references:
``payment_links (token, org_id, id) -> payment_link_tokens (token, org_id, link_id)``.
The owning table's primary key is ``(org_id, id)``, so no two rows can share a
key, and none can exist without its lookup row. A foreign key from a distributed
table to a reference table is the direction Citus supports.

The repositories write the lookup row before the owning row, in the same
transaction, and delete it with the owning row (a wallet address's holder, shared
by the organization's wallets on every chain of the family, with the last of
them). The tenant-less resolvers read the lookup first, then the owning row by
``(org_id, id)``: one shard on Citus.

``org_id`` references ``organizations`` here, so that an organization's lookup
rows go with it. On Citus that foreign key is left out: a reference table cannot
reference a distributed table.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.schema.declarative import TENANT_SETTING_SQL, Base


def _org_id() -> Mapped[uuid.UUID]:
    # Not part of the primary key (the key alone is), unlike a tenant table's.
    return mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        server_default=text(TENANT_SETTING_SQL),
    )


class PaymentLinkToken(Base):
    """The public token of a payment link, unique across tenants."""

    __tablename__ = "payment_link_tokens"
    __tenant_owned__ = True
    __table_args__ = (
        UniqueConstraint("token", "org_id", "link_id"),
        # The organization's cascade, and the link's own token.
        Index("ix_payment_link_tokens_org_id_link_id", "org_id", "link_id"),
    )

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID] = _org_id()
    link_id: Mapped[uuid.UUID]


class WalletAddress(Base):
    """An address on a chain, held by one wallet across tenants."""

    __tablename__ = "wallet_addresses"
    __tenant_owned__ = True
    __table_args__ = (
        UniqueConstraint("chain", "address", "org_id", "wallet_id"),
        Index("ix_wallet_addresses_org_id_wallet_id", "org_id", "wallet_id"),
    )

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID] = _org_id()
    wallet_id: Mapped[uuid.UUID]


class WalletAddressHolder(Base):
    """The organization that holds an address on every chain of its family.

    One key controls its address on every chain of a family (every EVM chain), so
    the address belongs to one organization there: the primary key is the family
    address alone, and each of the organization's wallets on it, whatever its
    chain, references ``(chain_family, address, org_id)``. The row lives while
    any of those wallets does.
    """

    __tablename__ = "wallet_address_holders"
    __tenant_owned__ = True
    __table_args__ = (
        UniqueConstraint("chain_family", "address", "org_id"),
        # The organization's cascade.
        Index("ix_wallet_address_holders_org_id", "org_id"),
    )

    chain_family: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID] = _org_id()


class InvitationToken(Base):
    """The SHA-256 of a pending invitation's token, unique across tenants."""

    __tablename__ = "invitation_tokens"
    __tenant_owned__ = True
    __table_args__ = (
        UniqueConstraint("token_hash", "org_id", "user_id"),
        Index("ix_invitation_tokens_org_id_user_id", "org_id", "user_id"),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    org_id: Mapped[uuid.UUID] = _org_id()
    user_id: Mapped[uuid.UUID]
