"""Data access per aggregate; tenant-agnostic (isolation comes from the database)."""

from repositories.account import Accounts
from repositories.agent import AgentRepository
from repositories.agent_specs import AgentSpecs
from repositories.base import AsyncRepository
from repositories.customer import CustomerRepository
from repositories.customer_specs import CustomerSpecs
from repositories.database import PlatformDatabase
from repositories.errors import (
    ChainError,
    IdempotencyKeyReused,
    InvalidTransition,
    LastOwnerError,
    PaymentLinkExhausted,
    PaymentLinkUnavailable,
    TransactionRejected,
)
from repositories.organization import Invitation, OrganizationRepository
from repositories.payment_link import PaymentLinkRepository
from repositories.payment_link_resolver import PaymentLinkRef, PaymentLinkResolver
from repositories.payment_link_specs import PaymentLinkSpecs
from repositories.payment_order import PaymentOrderRepository
from repositories.payment_order_lifecycle import ALLOWED_TRANSITIONS
from repositories.payment_order_report import DailyRevenue, OrderTotal
from repositories.payment_order_specs import PaymentOrderSpecs
from repositories.price import PriceRepository
from repositories.product import ProductRepository
from repositories.protocols import Repository, UnitOfWork
from repositories.unit_of_work import PlatformUnitOfWork
from repositories.user import LoginRecord, LoginResolver, Member, UserRepository
from repositories.wallets.repository import WalletRepository

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Accounts",
    "AgentRepository",
    "AgentSpecs",
    "AsyncRepository",
    "ChainError",
    "CustomerRepository",
    "CustomerSpecs",
    "DailyRevenue",
    "IdempotencyKeyReused",
    "InvalidTransition",
    "Invitation",
    "LastOwnerError",
    "LoginRecord",
    "LoginResolver",
    "Member",
    "OrderTotal",
    "OrganizationRepository",
    "PaymentLinkExhausted",
    "PaymentLinkRef",
    "PaymentLinkRepository",
    "PaymentLinkResolver",
    "PaymentLinkSpecs",
    "PaymentLinkUnavailable",
    "PaymentOrderRepository",
    "PaymentOrderSpecs",
    "PlatformDatabase",
    "PlatformUnitOfWork",
    "PriceRepository",
    "ProductRepository",
    "Repository",
    "TransactionRejected",
    "UnitOfWork",
    "UserRepository",
    "WalletRepository",
]
