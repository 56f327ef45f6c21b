"""The payments platform's domain events: what happened to its aggregates.

Each is a ``tenancy`` ``DomainEvent``: collected by the unit of work, written to
the outbox with the data, relayed to the broker under its ``aggregate_type`` topic.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from tenancy.events.domain_event import DomainEvent

# -- Organizations and memberships -------------------------------------------


class OrganizationCreated(DomainEvent):
    """An organization was created together with its first owner."""

    aggregate_type: ClassVar[str] = "organization"

    name: str
    owner_user_id: uuid.UUID


class MemberAdded(DomainEvent):
    """A user joined an organization with a role."""

    aggregate_type: ClassVar[str] = "organization"

    user_id: uuid.UUID
    role: str


class MemberRoleChanged(DomainEvent):
    """A member's role changed."""

    aggregate_type: ClassVar[str] = "organization"

    user_id: uuid.UUID
    old_role: str
    new_role: str


class MemberRemoved(DomainEvent):
    """A user left an organization."""

    aggregate_type: ClassVar[str] = "organization"

    user_id: uuid.UUID


class OwnershipTransferred(DomainEvent):
    """Ownership moved from one member to another."""

    aggregate_type: ClassVar[str] = "organization"

    from_user_id: uuid.UUID
    to_user_id: uuid.UUID


# -- Agents -------------------------------------------------------------------


class AgentCapabilityGranted(DomainEvent):
    """An agent was granted capabilities."""

    aggregate_type: ClassVar[str] = "agent"

    capabilities: list[str]


class AgentCapabilityRevoked(DomainEvent):
    """Capabilities were taken from an agent."""

    aggregate_type: ClassVar[str] = "agent"

    capabilities: list[str]


# -- Customers ----------------------------------------------------------------


class PaymentMethodAdded(DomainEvent):
    """A payment method was stored for a customer (aggregate: the customer)."""

    aggregate_type: ClassVar[str] = "customer"

    payment_method_id: uuid.UUID
    type: str
    is_default: bool


class PaymentMethodRemoved(DomainEvent):
    """A payment method was removed from a customer."""

    aggregate_type: ClassVar[str] = "customer"

    payment_method_id: uuid.UUID


class DefaultPaymentMethodChanged(DomainEvent):
    """A customer's default payment method changed."""

    aggregate_type: ClassVar[str] = "customer"

    payment_method_id: uuid.UUID


# -- Catalog --------------------------------------------------------------------


class PriceChanged(DomainEvent):
    """A product got a new active price in a currency (aggregate: the product)."""

    aggregate_type: ClassVar[str] = "product"

    price_id: uuid.UUID
    previous_price_id: uuid.UUID | None
    currency: str
    unit_amount: int


# -- Payments -------------------------------------------------------------------


class PaymentLinkCreated(DomainEvent):
    """A payment link was created."""

    aggregate_type: ClassVar[str] = "payment_link"

    price_id: uuid.UUID
    expires_at: datetime | None
    max_uses: int | None


class PaymentLinkUsed(DomainEvent):
    """A payment link was used once more."""

    aggregate_type: ClassVar[str] = "payment_link"

    use_count: int


class PaymentLinkExpired(DomainEvent):
    """A payment link passed its expiry and was marked expired."""

    aggregate_type: ClassVar[str] = "payment_link"


class PaymentOrderCreated(DomainEvent):
    """A payment order was created."""

    aggregate_type: ClassVar[str] = "payment_order"

    customer_id: uuid.UUID
    amount: int
    currency: str
    payment_link_id: uuid.UUID | None
    agent_id: uuid.UUID | None


class PaymentOrderStatusChanged(DomainEvent):
    """A payment order moved along its lifecycle."""

    aggregate_type: ClassVar[str] = "payment_order"

    old_status: str
    new_status: str


# -- Wallets --------------------------------------------------------------------


class WalletTransactionRecorded(DomainEvent):
    """An on-chain transfer into or out of a wallet was recorded (aggregate: the wallet)."""

    aggregate_type: ClassVar[str] = "wallet"

    transaction_id: uuid.UUID
    chain: str
    tx_hash: str
    direction: str
    amount: str
    status: str


class PaymentMethodUpdated(DomainEvent):
    """A customer's payment method changed (label or last four digits)."""

    aggregate_type: ClassVar[str] = "customer"

    payment_method_id: uuid.UUID
    changes: dict[str, Any]
