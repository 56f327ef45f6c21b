"""The scripted scenario of ``tenancy demo``: two tenants, their own rows, a paid order.

Everything here runs as the application role through ``PlatformDatabase`` and its unit
of work, one transaction per tenant and step, each committed explicitly. Each
step prints what it did and records what happened in ``StoryOutcome``, which the
later steps and the tests read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from repositories.database import PlatformDatabase
from repositories.demo.output import Console, money, short
from repositories.models import Agent, Customer, PaymentOrderStatus, Product, User


@dataclass(frozen=True)
class TenantPlan:
    """What the demo creates for one organization."""

    name: str
    owner_email: str
    owner_username: str
    agent: str
    capabilities: tuple[str, ...]
    customers: tuple[tuple[str, str], ...]  # (name, email)
    product: str
    sku: str
    currency: str
    unit_amount: int


PLANS = (
    TenantPlan(
        name="Acme Robotics",
        owner_email="ada@acme.example",
        owner_username="ada",
        agent="checkout-bot",
        capabilities=("payments:create", "refunds:request"),
        customers=(
            ("Initech", "ap@initech.example"),
            ("Vandelay Industries", "art@vandelay.example"),
            ("Wayne Logistics", "ops@wayne.example"),
        ),
        product="Picking robot, monthly",
        sku="ACME-PICK-M",
        currency="USD",
        unit_amount=49_900,
    ),
    TenantPlan(
        name="Globex Agents",
        owner_email="hank@globex.example",
        owner_username="hank",
        agent="billing-agent",
        capabilities=("invoices:read", "payments:create"),
        customers=(
            ("Cyberdyne", "billing@cyberdyne.example"),
            ("Tyrell Corp", "finance@tyrell.example"),
        ),
        product="Agent API credits, 1M",
        sku="GLX-CRED-1M",
        currency="EUR",
        unit_amount=2_500,
    ),
)


@dataclass
class Tenant:
    """One organization the demo created, with the ids later steps need."""

    plan: TenantPlan
    org_id: uuid.UUID
    agent_id: uuid.UUID
    customer_ids: list[uuid.UUID]


@dataclass
class StoryOutcome:
    """What the scenario observed; the events step and the tests read it."""

    tenants: list[Tenant] = field(default_factory=list)
    visible_customers: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    raw_count: int = 0
    refusals: dict[str, str] = field(default_factory=dict)
    deleted: str = ""
    order_statuses: list[str] = field(default_factory=list)


async def create_tenants(db: PlatformDatabase, console: Console, outcome: StoryOutcome) -> None:
    """Create each planned organization with its owner, agent, customers and priced product."""
    console.section("Two organizations, written through the unit of work as tenancy_app")
    for plan in PLANS:
        org_id = uuid.uuid4()
        async with db.unit_of_work(org_id) as uow:
            # password_hash is set (to "none, signs in elsewhere") so that the created
            # event can read every column without a lazy load (see the report).
            owner = User(email=plan.owner_email, username=plan.owner_username, password_hash=None)
            await uow.organizations.create(plan.name, owner)
            agent = await uow.agents.add(
                Agent(name=plan.agent, capabilities=list(plan.capabilities))
            )
            customers = [
                await uow.customers.add(Customer(name=name, email=email))
                for name, email in plan.customers
            ]
            product = await uow.products.add(Product(name=plan.product, sku=plan.sku))
            await uow.prices.change_price(product.id, plan.currency, plan.unit_amount)
            await uow.commit()
        outcome.tenants.append(Tenant(plan, org_id, agent.id, [c.id for c in customers]))
        console.line(f"{plan.name} (org {short(org_id)}), committed:")
        console.line(f"owner {plan.owner_email}", depth=2)
        console.line(f"agent {plan.agent} {list(agent.capabilities)}", depth=2)
        console.line(f"{len(customers)} customers", depth=2)
        console.line(
            f"product {plan.product!r} at {money(plan.unit_amount, plan.currency)}", depth=2
        )


async def show_own_rows(db: PlatformDatabase, console: Console, outcome: StoryOutcome) -> None:
    """List, as each tenant, the customers, products and agents it can see."""
    console.section("Each tenant sees only its own rows (same tables, same queries)")
    blocks = []
    for tenant in outcome.tenants:
        async with db.unit_of_work(tenant.org_id) as uow:
            customers = await uow.customers.list(order_by=["name"])
            products = await uow.products.list()
            agents = await uow.agents.list()
        names = [c.name for c in customers]
        outcome.visible_customers[tenant.org_id] = names
        blocks.append(
            [
                f"as {tenant.plan.name}:",
                f"  customers ({len(customers)})",
                *(f"    {name}" for name in names),
                f"  products ({len(products)})",
                *(f"    {p.name}" for p in products),
                f"  agents ({len(agents)})",
                *(f"    {a.name}" for a in agents),
            ]
        )
    console.columns(blocks[0], blocks[1])


async def pay_order(db: PlatformDatabase, console: Console, outcome: StoryOutcome) -> None:
    """Create a payment order for A and move it pending -> authorized -> paid, one commit each."""
    console.section("A payment order, paid (one commit per step)")
    acme = outcome.tenants[0]
    plan = acme.plan
    async with db.unit_of_work(acme.org_id) as uow:
        order = await uow.payment_orders.create(
            acme.customer_ids[0],
            plan.unit_amount,
            plan.currency,
            idempotency_key="demo-order-1",
            agent_id=acme.agent_id,
            description=plan.product,
        )
        await uow.commit()
        outcome.order_statuses.append(order.status)
        console.line(
            f"order {short(order.id)} for {money(order.amount, order.currency)} "
            f"by {plan.agent}: {order.status}"
        )
        for status in (PaymentOrderStatus.AUTHORIZED, PaymentOrderStatus.PAID):
            order = await uow.payment_orders.transition(order.id, status.value)
            await uow.commit()
            outcome.order_statuses.append(order.status)
            console.line(f"-> {order.status} (version {order.version})", depth=2)
