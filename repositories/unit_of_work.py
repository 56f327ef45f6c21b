"""The payments platform's unit of work: every repository on one tenant transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from repositories.agent import AgentRepository
from repositories.customer import CustomerRepository
from repositories.organization import OrganizationRepository
from repositories.payment_link import PaymentLinkRepository
from repositories.payment_order import PaymentOrderRepository
from repositories.price import PriceRepository
from repositories.product import ProductRepository
from repositories.user import UserRepository
from repositories.wallet import WalletRepository
from tenancy.unit_of_work import EventSource, UnitOfWork


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

    def _start(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.organizations = OrganizationRepository(session)
        self.agents = AgentRepository(session)
        self.customers = CustomerRepository(session)
        self.products = ProductRepository(session)
        self.prices = PriceRepository(session)
        self.payment_links = PaymentLinkRepository(session)
        self.payment_orders = PaymentOrderRepository(session)
        self.wallets = WalletRepository(session)

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
