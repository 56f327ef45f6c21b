"""Specifications: payment order and link filters, composition, EXISTS criteria, paging."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from repositories.models import PaymentLink, PaymentOrder
from repositories.payment_link_specs import PaymentLinkSpecs
from repositories.payment_order_specs import PaymentOrderSpecs as Specs
from tenancy import Database, InvalidData
from tenancy.pagination import KeysetPage, OffsetPage
from tenancy.specification import Specification
from tests.repositories.payments_support import new_agent, new_customer, new_price

START = datetime(2026, 1, 10, tzinfo=UTC)
STATUSES = ("pending", "paid", "failed", "authorized")


@dataclass(frozen=True)
class Seeded:
    """An order as seeded, to compute expected results without the database."""

    id: uuid.UUID
    amount: int
    currency: str
    status: str
    customer: str
    agent: bool
    link: bool
    created_at: datetime


@dataclass
class Shop:
    """A tenant with two customers, an agent, a link and twelve varied orders."""

    org_id: uuid.UUID
    alice_id: uuid.UUID
    bob_id: uuid.UUID
    agent_id: uuid.UUID
    link_id: uuid.UUID
    orders: list[Seeded]

    def ids(self, keep: Callable[[Seeded], bool]) -> set[uuid.UUID]:
        return {o.id for o in self.orders if keep(o)}


@pytest.fixture
async def shop(db: Database, org_a: uuid.UUID) -> Shop:
    """Twelve orders varying in amount, currency, status, customer, agent, link and time."""
    async with db.unit_of_work(org_a) as uow:
        alice = await new_customer(uow, "alice@example.com")
        bob = await new_customer(uow, "bob@example.com")
        agent = await new_agent(uow)
        link = await uow.payment_links.create((await new_price(uow)).id)
        seeded = []
        for i in range(12):
            fields = {
                "amount": 100 * (i + 1),
                "currency": "USD" if i % 3 else "EUR",
                "status": STATUSES[i % 4],
                "customer_id": alice.id if i % 2 == 0 else bob.id,
                "agent_id": agent.id if i % 4 == 0 else None,
                "payment_link_id": link.id if i % 5 == 0 else None,
                "created_at": START + timedelta(hours=i),
            }
            order = await uow.payment_orders.add(PaymentOrder(**fields))
            seeded.append(
                Seeded(
                    order.id,
                    order.amount,
                    order.currency,
                    order.status,
                    "alice" if i % 2 == 0 else "bob",
                    i % 4 == 0,
                    i % 5 == 0,
                    order.created_at,
                )
            )
        await uow.commit()
    return Shop(org_a, alice.id, bob.id, agent.id, link.id, seeded)


async def matching(db: Database, shop: Shop, spec: Specification[PaymentOrder]) -> set[uuid.UUID]:
    async with db.unit_of_work(shop.org_id) as uow:
        return {o.id for o in await uow.payment_orders.list(spec)}


# -- single criteria ----------------------------------------------------------------


async def test_status_in_keeps_the_listed_statuses(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.status_in("paid", "failed"))
    assert found == shop.ids(lambda o: o.status in ("paid", "failed"))


async def test_created_between_is_half_open(db: Database, shop: Shop) -> None:
    spec = Specs.created_between(START + timedelta(hours=2), START + timedelta(hours=5))
    found = await matching(db, shop, spec)
    assert found == {o.id for o in shop.orders[2:5]}


async def test_amount_between_includes_both_ends(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.amount_between(300, 500))
    assert found == shop.ids(lambda o: 300 <= o.amount <= 500)


async def test_currency_is_ignores_case(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.currency_is("eur"))
    assert found == shop.ids(lambda o: o.currency == "EUR")


async def test_for_customer_keeps_that_customers_orders(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.for_customer(shop.bob_id))
    assert found == shop.ids(lambda o: o.customer == "bob")


async def test_for_customer_email_matches_through_exists(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.for_customer_email("  Alice@Example.COM "))
    assert found == shop.ids(lambda o: o.customer == "alice")


async def test_for_unknown_customer_email_matches_nothing(db: Database, shop: Shop) -> None:
    assert await matching(db, shop, Specs.for_customer_email("carol@example.com")) == set()


async def test_for_payment_link_keeps_orders_through_the_link(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.for_payment_link(shop.link_id))
    assert found == shop.ids(lambda o: o.link)


async def test_for_agent_keeps_the_agents_orders(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, Specs.for_agent(shop.agent_id))
    assert found == shop.ids(lambda o: o.agent)


async def test_customer_email_of_another_tenant_matches_nothing(
    db: Database, shop: Shop, org_b: uuid.UUID
) -> None:
    async with db.unit_of_work(org_b) as uow:
        theirs = await new_customer(uow, "carol@example.com")
        await uow.payment_orders.create(theirs.id, 100, "USD")
        await uow.commit()

    assert await matching(db, shop, Specs.for_customer_email("carol@example.com")) == set()


# -- composition --------------------------------------------------------------------


async def test_and_keeps_rows_matching_both(db: Database, shop: Shop) -> None:
    spec = Specs.status_in("paid") & Specs.currency_is("USD")
    found = await matching(db, shop, spec)
    assert found == shop.ids(lambda o: o.status == "paid" and o.currency == "USD")


async def test_or_keeps_rows_matching_either(db: Database, shop: Shop) -> None:
    spec = Specs.for_agent(shop.agent_id) | Specs.for_payment_link(shop.link_id)
    found = await matching(db, shop, spec)
    assert found == shop.ids(lambda o: o.agent or o.link)


async def test_not_keeps_rows_not_matching(db: Database, shop: Shop) -> None:
    found = await matching(db, shop, ~Specs.status_in("pending"))
    assert found == shop.ids(lambda o: o.status != "pending")


async def test_exists_criterion_composes_without_duplicating_rows(db: Database, shop: Shop) -> None:
    spec = (Specs.for_customer_email("alice@example.com") | Specs.amount_between(0, 400)) & ~(
        Specs.currency_is("EUR")
    )
    expected = shop.ids(
        lambda o: (o.customer == "alice" or o.amount <= 400) and o.currency != "EUR"
    )
    async with db.unit_of_work(shop.org_id) as uow:
        rows = await uow.payment_orders.list(spec)
        assert sorted(o.id for o in rows) == sorted(expected)


async def test_every_criterion_combined(db: Database, shop: Shop) -> None:
    spec = (
        Specs.status_in("pending", "paid")
        & Specs.created_between(START, START + timedelta(days=1))
        & Specs.amount_between(100, 1200)
        & Specs.currency_is("EUR")
        & Specs.for_customer_email("alice@example.com")
        & Specs.for_agent(shop.agent_id)
        & Specs.for_payment_link(shop.link_id)
    )
    found = await matching(db, shop, spec)
    assert found == shop.ids(
        lambda o: (
            o.status in ("pending", "paid")
            and o.currency == "EUR"
            and o.customer == "alice"
            and o.agent
            and o.link
        )
    )


async def test_exists_answers_whether_any_row_matches(db: Database, shop: Shop) -> None:
    async with db.unit_of_work(shop.org_id) as uow:
        assert await uow.payment_orders.exists(Specs.status_in("failed"))
        assert not await uow.payment_orders.exists(Specs.status_in("refunded"))


# -- counting and paging ------------------------------------------------------------


async def test_count_applies_only_the_filter(db: Database, shop: Shop) -> None:
    spec = Specs.currency_is("USD")
    async with db.unit_of_work(shop.org_id) as uow:
        page = await uow.payment_orders.list(spec, order_by=["amount"], page=OffsetPage(limit=2))
        count = await uow.payment_orders.count(spec)

    assert count == page.total == len(shop.ids(lambda o: o.currency == "USD"))
    assert len(page.items) == 2


async def test_keyset_pages_give_exactly_the_filtered_rows_in_order(
    db: Database, shop: Shop
) -> None:
    spec = ~Specs.status_in("failed") & Specs.amount_between(200, 1200)
    kept = [o for o in shop.orders if o.status != "failed" and o.amount >= 200]
    expected = [o.id for o in sorted(kept, key=lambda o: (o.created_at, o.id), reverse=True)]

    pages: list[list[uuid.UUID]] = []
    cursor: str | None = None
    async with db.unit_of_work(shop.org_id) as uow:
        while True:
            result = await uow.payment_orders.list(spec, page=KeysetPage(limit=3, after=cursor))
            pages.append([o.id for o in result.items])
            cursor = result.next_cursor
            if cursor is None:
                break

    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == expected


async def test_keyset_pages_follow_an_ascending_amount_order(db: Database, shop: Shop) -> None:
    spec = Specs.currency_is("USD")
    expected = [o.id for o in sorted(shop.orders, key=lambda o: o.amount) if o.currency == "USD"]

    seen: list[uuid.UUID] = []
    cursor: str | None = None
    async with db.unit_of_work(shop.org_id) as uow:
        while True:
            page = KeysetPage(limit=5, after=cursor)
            result = await uow.payment_orders.list(spec, order_by=["amount"], page=page)
            seen.extend(o.id for o in result.items)
            if (cursor := result.next_cursor) is None:
                break

    assert seen == expected


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Specs.status_in(),
        lambda: Specs.status_in("paid", "settled"),
        lambda: Specs.created_between(datetime(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC)),
        lambda: Specs.created_between(START, START - timedelta(days=1)),
        lambda: Specs.amount_between(500, 100),
        lambda: Specs.currency_is("euro"),
    ],
    ids=[
        "no-status",
        "unknown-status",
        "naive-start",
        "reversed-dates",
        "reversed-amounts",
        "bad-currency",
    ],
)
def test_malformed_criteria_are_invalid(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidData):
        build()


# -- payment link specifications ----------------------------------------------------


async def test_link_specs_compose_active_and_not_exhausted(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        price_id = (await new_price(uow)).id
        usable = await uow.payment_links.create(price_id, max_uses=2)
        unlimited = await uow.payment_links.create(price_id)
        used_up = await uow.payment_links.create(price_id, max_uses=1)
        await uow.payment_links.record_use(used_up.id)
        expired = datetime.now(UTC) - timedelta(minutes=1)
        await uow.payment_links.add(PaymentLink(price_id=price_id, expires_at=expired))

        spec = PaymentLinkSpecs.active_at() & ~PaymentLinkSpecs.exhausted()
        found = {link.id for link in await uow.payment_links.list(spec)}

    assert found == {usable.id, unlimited.id}
