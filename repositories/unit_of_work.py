"""The payments platform's unit of work: every repository on one tenant transaction."""

from __future__ import annotations

from repositories.agent import AgentRepository
from repositories.customer import CustomerRepository
from repositories.organization import OrganizationRepository
from repositories.payment_link import PaymentLinkRepository
from repositories.payment_order import PaymentOrderRepository
from repositories.price import PriceRepository
from repositories.product import ProductRepository
from repositories.user import UserRepository
from repositories.wallets.repository import WalletRepository
from tenancy.db.repository_attribute import RepositoryAttribute
from tenancy.db.unit_of_work import UnitOfWork


class PlatformUnitOfWork(UnitOfWork):
    """``async with db.unit_of_work(org_id) as uow``: ``uow.customers``, ``uow.commit()``, ..."""

    users = RepositoryAttribute(UserRepository)
    organizations = RepositoryAttribute(OrganizationRepository)
    agents = RepositoryAttribute(AgentRepository)
    customers = RepositoryAttribute(CustomerRepository)
    products = RepositoryAttribute(ProductRepository)
    prices = RepositoryAttribute(PriceRepository)
    payment_links = RepositoryAttribute(PaymentLinkRepository)
    payment_orders = RepositoryAttribute(PaymentOrderRepository)
    wallets = RepositoryAttribute(WalletRepository)
