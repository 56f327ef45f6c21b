"""Enumerations stored as checked text columns."""

from __future__ import annotations

from enum import StrEnum


class MemberRole(StrEnum):
    """Role of a user inside an organization."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class MembershipStatus(StrEnum):
    """Standing of a user in one organization: invited, accepted, or suspended there."""

    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class OrganizationStatus(StrEnum):
    """Lifecycle of an organization."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class AgentStatus(StrEnum):
    """Lifecycle of an agent."""

    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class PaymentMethodType(StrEnum):
    """Kind of stored payment method."""

    CARD = "card"
    BANK_ACCOUNT = "bank_account"
    CRYPTO_WALLET = "crypto_wallet"


class PaymentLinkStatus(StrEnum):
    """Lifecycle of a payment link."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"


class PaymentOrderStatus(StrEnum):
    """Lifecycle of a payment order."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    REFUNDED = "refunded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TransactionDirection(StrEnum):
    """Direction of an on-chain transfer relative to the wallet."""

    IN = "in"
    OUT = "out"


class TransactionStatus(StrEnum):
    """Confirmation state of an on-chain transaction."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    DROPPED = "dropped"
