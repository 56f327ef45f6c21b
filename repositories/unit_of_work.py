"""The payments platform's unit of work: every repository on one tenant transaction."""

from __future__ import annotations

from collections.abc import Iterable

from repositories.agent import AgentRepository
from repositories.customer import CustomerRepository
from repositories.organization import OrganizationRepository
from repositories.payment_link import PaymentLinkRepository
from repositories.payment_order import PaymentOrderRepository
from repositories.price import PriceRepository
from repositories.product import ProductRepository
from repositories.user import UserRepository
from repositories.wallet import WalletRepository
from tenancy.event_collection import EventSource
from tenancy.unit_of_work import UnitOfWork


class PlatformUnitOfWork(UnitOfWork):
    """``async with db.unit_of_work(org_id) as uow``: ``uow.customers``, ``uow.commit()``, ..."""

    users: UserRepository
    organizations: OrganizationRepository
    agents: AgentRepository
    customers: CustomerRepository
    products: ProductRepository
    prices: PriceRepository
    payment_links: PaymentLinkRepository
    payment_orders: PaymentOrderRepository
    wallets: WalletRepository

    def _start(self) -> None:
        self.users = UserRepository(self)
        self.organizations = OrganizationRepository(self)
        self.agents = AgentRepository(self)
        self.customers = CustomerRepository(self)
        self.products = ProductRepository(self)
        self.prices = PriceRepository(self)
        self.payment_links = PaymentLinkRepository(self)
        self.payment_orders = PaymentOrderRepository(self)
        self.wallets = WalletRepository(self)

    def _event_sources(self) -> Iterable[EventSource]:
        return (
            self.users,
            self.organizations,
            self.agents,
            self.customers,
            self.products,
            self.prices,
            self.payment_links,
            self.payment_orders,
            self.wallets,
        )
