"""ORM models of the payments platform; tenant tables lead with ``org_id``."""

from repositories.models.agent import Agent
from repositories.models.chain import ChainCheckpoint, ScannedBlock
from repositories.models.customer import Customer, PaymentMethod
from repositories.models.enums import (
    AgentStatus,
    MemberRole,
    MembershipStatus,
    OrganizationStatus,
    PaymentLinkStatus,
    PaymentMethodType,
    PaymentOrderStatus,
    TransactionDirection,
    TransactionStatus,
)
from repositories.models.global_key import (
    InvitationToken,
    PaymentLinkToken,
    WalletAddress,
    WalletAddressHolder,
)
from repositories.models.organization import Membership, Organization, User
from repositories.models.payment import PaymentLink, PaymentOrder
from repositories.models.product import Price, Product
from repositories.models.wallet import Wallet, WalletTransaction
from tenancy.events.outbox_table import OutboxEvent, OutboxStatus
from tenancy.schema.declarative import Base, TenantOwned, is_tenant_owned, utcnow

#: Tables under the tenant predicate, in dependency order.
TENANT_TABLES: tuple[str, ...] = (
    "invitation_tokens",
    "memberships",
    "agents",
    "customers",
    "payment_methods",
    "products",
    "prices",
    "payment_link_tokens",
    "payment_links",
    "payment_orders",
    "wallet_addresses",
    "wallet_address_holders",
    "wallets",
    "wallet_transactions",
    "outbox_events",
)

__all__ = [
    "TENANT_TABLES",
    "Agent",
    "AgentStatus",
    "Base",
    "ChainCheckpoint",
    "Customer",
    "InvitationToken",
    "MemberRole",
    "Membership",
    "MembershipStatus",
    "Organization",
    "OrganizationStatus",
    "OutboxEvent",
    "OutboxStatus",
    "PaymentLink",
    "PaymentLinkStatus",
    "PaymentLinkToken",
    "PaymentMethod",
    "PaymentMethodType",
    "PaymentOrder",
    "PaymentOrderStatus",
    "Price",
    "Product",
    "ScannedBlock",
    "TenantOwned",
    "TransactionDirection",
    "TransactionStatus",
    "User",
    "Wallet",
    "WalletAddress",
    "WalletAddressHolder",
    "WalletTransaction",
    "is_tenant_owned",
    "utcnow",
]
