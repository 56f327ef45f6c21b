"""The rows of one demo organization, built deterministically (no I/O here).

All randomness comes from a ``random.Random`` seeded with the organization's
index (string seeds are hashed with SHA-512, not ``hash()``, so they are stable
across processes), and all timestamps are offsets from a fixed epoch.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from repositories.models import (
    Agent,
    AgentStatus,
    Base,
    Customer,
    InvitationToken,
    MemberRole,
    Membership,
    MembershipStatus,
    Organization,
    OutboxEvent,
    OutboxStatus,
    PaymentLink,
    PaymentLinkStatus,
    PaymentLinkToken,
    PaymentMethod,
    PaymentMethodType,
    PaymentOrder,
    PaymentOrderStatus,
    Price,
    Product,
    TransactionDirection,
    TransactionStatus,
    User,
    Wallet,
    WalletAddress,
    WalletAddressHolder,
    WalletTransaction,
)
from repositories.models.wallet import DEFAULT_CHAIN_FAMILY

SEED_NAMESPACE = uuid.UUID("6f1d3c1e-2b7a-5c7e-9a51-0d3f2a6b8e11")
EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

_COMPANIES = (
    "Acme Robotics", "Globex Agents", "Initech AI", "Umbrella Payments", "Stark Autonomy",
    "Wayne Logistics", "Hooli Compute", "Tyrell Systems", "Cyberdyne Commerce", "Soylent Labs",
)  # fmt: skip
_FIRST = (
    "ada", "grace", "alan", "barbara", "edsger", "frances", "donald", "margaret", "ken",
    "radia", "tim", "sophie", "linus", "katherine", "john", "hedy",
)  # fmt: skip
_LAST = (
    "lovelace", "hopper", "turing", "liskov", "dijkstra", "allen", "knuth", "hamilton",
    "thompson", "perlman", "berners", "wilson", "torvalds", "johnson", "backus", "lamarr",
)  # fmt: skip
_PRODUCTS = (
    ("API credits, 1M tokens", 1_900), ("Agent seat, monthly", 4_900),
    ("Priority inference, 1h", 1_200), ("Vector storage, 100 GB", 2_500),
    ("Fine-tuning job", 15_000), ("Data labelling batch", 7_500),
)  # fmt: skip
_CAPABILITIES = (
    "payments:create", "payments:refund", "links:create", "customers:read",
    "customers:write", "wallets:read", "wallets:transfer", "catalog:write",
)  # fmt: skip
_AGENT_ROLES = ("assistant", "billing", "treasury", "support")
_COUNTRIES = ("DE", "FR", "US", "GB", "JP", "BR", "IN", "NL")
_MAIL_DOMAINS = ("mail.example", "corp.example", "shop.example")


def user_id(org_index: int, number: int) -> uuid.UUID:
    """Return the id of user ``number`` created with organization ``org_index`` (0 = owner)."""
    return uuid.uuid5(SEED_NAMESPACE, f"user-{org_index}-{number}")


@dataclass(frozen=True)
class GuestInvitation:
    """A user of another organization invited into this one, and its token's hash."""

    user_id: uuid.UUID
    token_hash: bytes
    expires_at: datetime


@dataclass
class OrganizationData:
    """The rows of one organization, grouped in layers whose parents come earlier."""

    organization: Organization
    owner_id: uuid.UUID
    users: list[Base] = field(default_factory=list)
    #: The lookup rows of the global keys (link tokens, wallet addresses and their
    #: holders), written before the rows that reference them.
    keys: list[Base] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    parents: list[Base] = field(default_factory=list)
    children: list[Base] = field(default_factory=list)
    grandchildren: list[Base] = field(default_factory=list)
    leaves: list[Base] = field(default_factory=list)

    def layers(self, guest: GuestInvitation | None) -> list[list[Base]]:
        """Return the rows in insert order; ``guest`` is invited as a viewer (pending)."""
        memberships: list[Base] = list(self.memberships)
        keys = list(self.keys)
        if guest is not None:
            keys.append(InvitationToken(token_hash=guest.token_hash, user_id=guest.user_id))
            # The guest belongs to another organization: only an invitation, which the
            # seed then accepts on the guest's behalf (accept_invitation, no tenant).
            memberships.append(
                Membership(
                    user_id=guest.user_id,
                    role=MemberRole.VIEWER.value,
                    status=MembershipStatus.PENDING.value,
                    invitation_token_hash=guest.token_hash,
                    invitation_expires_at=guest.expires_at,
                    created_at=EPOCH,
                )
            )
        return [
            [self.organization],
            self.users,
            keys,
            memberships,
            self.parents,
            self.children,
            self.grandchildren,
            self.leaves,
        ]


def company_name(index: int) -> str:
    """Return the display name of organization ``index`` (unique per index)."""
    base = _COMPANIES[index % len(_COMPANIES)]
    return base if index < len(_COMPANIES) else f"{base} {index // len(_COMPANIES) + 1}"


def build_organization(index: int, org_id: uuid.UUID) -> OrganizationData:
    """Return every row of organization ``index`` (id ``org_id``), always the same."""
    build = _Builder(index, org_id)
    data = OrganizationData(
        Organization(id=org_id, name=build.name, created_at=build.at(0)),
        owner_id=user_id(index, 0),
    )
    data.users, data.memberships = build.people()
    agents, customers, products = build.agents(), build.customers(), build.products()
    data.parents = [*agents, *customers, *products]
    prices, active_prices = build.prices(products)
    data.children = [*build.payment_methods(customers), *prices]
    links, wallets = build.links(active_prices), build.wallets(agents)
    data.keys = [
        *(PaymentLinkToken(token=link.token, link_id=link.id) for link in links),
        *(WalletAddress(chain=w.chain, address=w.address, wallet_id=w.id) for w in wallets),
        # Each wallet has an address of its own: one holder row each.
        *(WalletAddressHolder(chain_family=w.chain_family, address=w.address) for w in wallets),
    ]
    data.grandchildren = [*links, *wallets]
    orders = build.orders(customers, agents, links, active_prices)
    data.leaves = [*orders, *build.transactions(wallets), *_outbox_events(orders)]
    return data


class _Builder:
    # Every call draws from the same generator in a fixed order: keep the order.

    def __init__(self, index: int, org_id: uuid.UUID) -> None:
        self.index = index
        self.org_id = org_id
        # Reproducibility is the point here, not secrecy: demo data only.
        self.rng = random.Random(f"tenancy-seed-{index}")  # noqa: S311
        self.name = company_name(index)
        self.domain = self.name.lower().replace(" ", "-") + ".example"

    def at(self, days: float) -> datetime:
        return EPOCH + timedelta(days=self.index + days)

    def new_id(self, kind: str, number: int) -> uuid.UUID:
        return uuid.uuid5(self.org_id, f"{kind}-{number}")

    def people(self) -> tuple[list[Base], list[Membership]]:
        roles = (MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER, MemberRole.VIEWER)
        names = zip(self.rng.sample(_FIRST, 4), self.rng.sample(_LAST, 4), roles, strict=True)
        users: list[Base] = []
        memberships = []
        for number, (first, last, role) in enumerate(names):
            uid = user_id(self.index, number)
            users.append(
                User(
                    id=uid,
                    email=f"{first}.{last}@{self.domain}",
                    username=f"{first}.{last}.{self.index}",
                    display_name=f"{first.title()} {last.title()}",
                    # No credentials (a tenant may not write them): seeded users cannot log in.
                    created_at=self.at(number),
                )
            )
            memberships.append(Membership(user_id=uid, role=role.value, created_at=self.at(0)))
        return users, memberships

    def agents(self) -> list[Agent]:
        statuses = (AgentStatus.ACTIVE, AgentStatus.ACTIVE, AgentStatus.PAUSED)
        return [
            Agent(
                id=self.new_id("agent", n),
                name=f"{self.rng.choice(('Atlas', 'Echo', 'Nova', 'Orion', 'Vega'))}-{n + 1}",
                role=_AGENT_ROLES[n % len(_AGENT_ROLES)],
                status=status.value,
                capabilities=sorted(self.rng.sample(_CAPABILITIES, self.rng.randint(2, 4))),
                created_at=self.at(1 + n),
            )
            for n, status in enumerate(statuses)
        ]

    def customers(self) -> list[Customer]:
        names = zip(self.rng.sample(_FIRST, 6), self.rng.sample(_LAST, 6), strict=True)
        return [
            Customer(
                id=self.new_id("customer", n),
                email=f"{first}.{last}{n}@{self.rng.choice(_MAIL_DOMAINS)}",
                name=f"{first.title()} {last.title()}",
                attributes={
                    "country": self.rng.choice(_COUNTRIES),
                    "segment": self.rng.choice(("smb", "enterprise")),
                },
                created_at=self.at(2 + n),
            )
            for n, (first, last) in enumerate(names)
        ]

    def products(self) -> list[Product]:
        return [
            Product(
                id=self.new_id("product", n),
                name=title,
                sku=f"SKU-{n + 1:03d}",
                description=f"{title}, billed to autonomous agents",
                created_at=self.at(2),
            )
            for n, (title, _) in enumerate(self.rng.sample(_PRODUCTS, 4))
        ]

    def payment_methods(self, customers: list[Customer]) -> list[PaymentMethod]:
        methods = []
        for n, customer in enumerate(customers):
            kinds = self.rng.sample(tuple(PaymentMethodType), self.rng.randint(1, 3))
            for k, kind in enumerate(kinds):
                card_like = kind != PaymentMethodType.CRYPTO_WALLET
                methods.append(
                    PaymentMethod(
                        id=self.new_id("payment-method", n * 3 + k),
                        customer_id=customer.id,
                        type=kind.value,
                        label=_method_label(kind, self.rng),
                        last4=f"{self.rng.randrange(10_000):04d}" if card_like else None,
                        # Exactly one default per customer (a partial unique index holds it).
                        is_default=k == 0,
                        created_at=customer.created_at + timedelta(hours=k + 1),
                    )
                )
        return methods

    def prices(self, products: list[Product]) -> tuple[list[Price], list[Price]]:
        """Return all prices and the active ones: each change left an inactive old price."""
        base_amounts = dict(_PRODUCTS)
        prices, active = [], []
        for n, product in enumerate(products):
            for c, currency in enumerate(("USD", "EUR") if n % 2 == 0 else ("USD",)):
                old_amount = base_amounts[product.name] + self.rng.randrange(0, 500)
                changed = self.at(30 + n)
                old = Price(
                    id=self.new_id("price", n * 4 + c * 2),
                    product_id=product.id,
                    currency=currency,
                    unit_amount=old_amount,
                    active=False,
                    deactivated_at=changed,
                    created_at=self.at(3),
                )
                new = Price(
                    id=self.new_id("price", n * 4 + c * 2 + 1),
                    product_id=product.id,
                    currency=currency,
                    unit_amount=old_amount + 100 * self.rng.randint(1, 5),
                    active=True,
                    created_at=changed,
                )
                prices.extend([old, new])
                active.append(new)
        return prices, active

    def links(self, prices: list[Price]) -> list[PaymentLink]:
        links = []
        for n, price in enumerate(prices):
            expired = n == 1
            max_uses = self.rng.choice((None, 50, 500))
            links.append(
                PaymentLink(
                    id=self.new_id("payment-link", n),
                    price_id=price.id,
                    # Reproducible demo token; real links draw theirs from `secrets`.
                    token=f"pl_{self.rng.getrandbits(160):040x}",
                    status=(
                        PaymentLinkStatus.EXPIRED if expired else PaymentLinkStatus.ACTIVE
                    ).value,
                    expires_at=self.at(45) if expired else None,
                    max_uses=max_uses,
                    use_count=self.rng.randint(0, max_uses or 20),
                    created_at=price.created_at,
                )
            )
        return links

    def wallets(self, agents: list[Agent]) -> list[Wallet]:
        return [
            Wallet(
                id=self.new_id("wallet", n),
                agent_id=agents[0].id if n == 1 else None,
                chain=chain,
                chain_family=DEFAULT_CHAIN_FAMILY,
                address=f"0x{self.rng.getrandbits(160):040x}",
                label="Treasury" if n == 0 else f"{agents[0].name} spending",
                created_at=self.at(4),
            )
            for n, chain in enumerate(("base", "ethereum"))
        ]

    def orders(
        self,
        customers: list[Customer],
        agents: list[Agent],
        links: list[PaymentLink],
        prices: list[Price],
    ) -> list[PaymentOrder]:
        by_id = {price.id: price for price in prices}
        statuses = tuple(PaymentOrderStatus)
        orders = []
        for n in range(10):
            link = self.rng.choice((None, *links))
            price = by_id[link.price_id] if link else None
            agent = self.rng.choice((None, *agents))
            orders.append(
                PaymentOrder(
                    id=self.new_id("payment-order", n),
                    customer_id=self.rng.choice(customers).id,
                    payment_link_id=link.id if link else None,
                    agent_id=agent.id if agent else None,
                    amount=price.unit_amount if price else self.rng.randrange(500, 50_000),
                    currency=price.currency if price else self.rng.choice(("USD", "EUR")),
                    status=statuses[n % len(statuses)].value,
                    idempotency_key=f"seed-order-{n:04d}",
                    description=f"Order {n + 1} of {self.name}",
                    created_at=self.at(40 + n),
                    updated_at=self.at(41 + n),
                )
            )
        return orders

    def transactions(self, wallets: list[Wallet]) -> list[WalletTransaction]:
        transactions = []
        for n in range(6):
            wallet = wallets[n % 2]
            transactions.append(
                WalletTransaction(
                    id=self.new_id("wallet-transaction", n),
                    wallet_id=wallet.id,
                    chain=wallet.chain,
                    tx_hash=f"0x{self.rng.getrandbits(256):064x}",
                    # -1 is the native transfer; token transfers carry their log index.
                    log_index=-1 if n % 2 == 0 else self.rng.randrange(0, 40),
                    direction=(
                        TransactionDirection.IN if n < 4 else TransactionDirection.OUT
                    ).value,
                    asset="native" if n % 2 == 0 else "USDC",
                    amount=Decimal(self.rng.randrange(10**15, 10**19)),
                    counterparty=f"0x{self.rng.getrandbits(160):040x}",
                    status=(
                        TransactionStatus.CONFIRMED if n < 5 else TransactionStatus.PENDING
                    ).value,
                    block_number=19_000_000 + self.index * 1_000 + n * 17,
                    block_hash=f"0x{self.rng.getrandbits(256):064x}",
                    confirmations=12 if n < 5 else 0,
                    created_at=self.at(50 + n),
                )
            )
        return transactions


def _method_label(kind: PaymentMethodType, rng: random.Random) -> str:
    if kind == PaymentMethodType.CARD:
        return rng.choice(("Visa", "Mastercard", "Amex")) + " card"
    if kind == PaymentMethodType.BANK_ACCOUNT:
        return "SEPA account " + rng.choice(("DE", "FR", "NL"))
    return "USDC on " + rng.choice(("base", "ethereum"))


def _outbox_events(orders: list[PaymentOrder]) -> list[OutboxEvent]:
    # The older orders' events went out already; the newest still wait for the relay.
    events = []
    for n, order in enumerate(orders):
        kinds = ["PaymentOrderCreated"]
        if order.status == PaymentOrderStatus.PAID.value:
            kinds.append("PaymentOrderPaid")
        published = n < len(orders) - 3
        for position, kind in enumerate(kinds):
            events.append(
                OutboxEvent(
                    id=uuid.uuid5(order.id, kind),
                    aggregate_type="PaymentOrder",
                    aggregate_id=str(order.id),
                    event_type=kind,
                    payload={
                        "order_id": str(order.id),
                        "amount": order.amount,
                        "currency": order.currency,
                        "status": order.status,
                    },
                    occurred_at=order.created_at,
                    position=position,
                    status=(OutboxStatus.PUBLISHED if published else OutboxStatus.PENDING).value,
                    attempts=1 if published else 0,
                    available_at=order.created_at,
                    published_at=order.created_at + timedelta(seconds=2) if published else None,
                )
            )
    return events
