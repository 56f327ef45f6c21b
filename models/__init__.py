"""ORM models of the payments platform; tenant tables lead with ``org_id``."""

from models.agent import Agent
from models.base import Base, TenantOwned, is_tenant_owned, utcnow
from models.catalog import Price, Product
from models.chain import ChainCheckpoint, ScannedBlock
from models.customer import Customer, PaymentMethod
from models.enums import (
    AgentStatus,
    MemberRole,
    MembershipStatus,
    OrganizationStatus,
    OutboxStatus,
    PaymentLinkStatus,
    PaymentMethodType,
    PaymentOrderStatus,
    TransactionDirection,
    TransactionStatus,
)
from models.organization import Membership, Organization, User
from models.outbox import OutboxEvent
from models.payment import PaymentLink, PaymentOrder
from models.wallet import Wallet, WalletTransaction

#: Tables under the tenant predicate, in dependency order.
TENANT_TABLES: tuple[str, ...] = (
    "memberships",
    "agents",
    "customers",
    "payment_methods",
    "products",
    "prices",
    "payment_links",
    "payment_orders",
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
    "MemberRole",
    "Membership",
    "MembershipStatus",
    "Organization",
    "OrganizationStatus",
    "OutboxEvent",
    "OutboxStatus",
    "PaymentLink",
    "PaymentLinkStatus",
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
    "WalletTransaction",
    "is_tenant_owned",
    "utcnow",
]
