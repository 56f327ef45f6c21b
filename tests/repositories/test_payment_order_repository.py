"""Payment orders: idempotent creation, tenant-owned references, lifecycle, reports."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from repositories.domain_events import PaymentOrderCreated, PaymentOrderStatusChanged
from repositories.errors import IdempotencyKeyReused, InvalidTransition
from repositories.models import PaymentOrder
from repositories.payment_order_report import DailyRevenue, OrderTotal
from repositories.payment_order_specs import PaymentOrderSpecs
from tenancy import Conflict, Database, ForeignKeyViolation, InvalidData, NotFound
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    new_agent,
    new_customer,
    new_price,
    random_id,
    wait_until_blocked,
)


@dataclass(frozen=True)
class Refs:
    """Rows an order may reference, all in one tenant."""

    customer_id: uuid.UUID
    agent_id: uuid.UUID
    payment_link_id: uuid.UUID


async def refs_in(db: Database, org_id: uuid.UUID) -> Refs:
    async with db.unit_of_work(org_id) as uow:
        customer = await new_customer(uow)
        agent = await new_agent(uow)
        link = await uow.payment_links.create((await new_price(uow)).id)
        await uow.commit()
    return Refs(customer.id, agent.id, link.id)


async def order_in(db: Database, org_id: uuid.UUID, customer_id: uuid.UUID) -> PaymentOrder:
    async with db.unit_of_work(org_id) as uow:
        order = await uow.payment_orders.create(customer_id, 1000, "USD")
        await uow.commit()
    return order


async def move(db: Database, org_id: uuid.UUID, order_id: uuid.UUID, *statuses: str) -> None:
    async with db.unit_of_work(org_id) as uow:
        for status in statuses:
            await uow.payment_orders.transition(order_id, status)
        await uow.commit()


# -- creation -----------------------------------------------------------------------


async def test_created_order_is_pending_at_version_one(db: Database, org_a: uuid.UUID) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        order = await uow.payment_orders.create(refs.customer_id, 1999, "eur")
        assert (order.status, order.version, order.currency) == ("pending", 1, "EUR")


async def test_order_may_reference_a_link_and_an_agent(db: Database, org_a: uuid.UUID) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        order = await uow.payment_orders.create(
            refs.customer_id,
            500,
            "USD",
            payment_link_id=refs.payment_link_id,
            agent_id=refs.agent_id,
        )
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        stored = await uow.payment_orders.get(order.id)
        assert (stored.payment_link_id, stored.agent_id) == (refs.payment_link_id, refs.agent_id)


async def test_creation_raises_payment_order_created(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    refs = await refs_in(payment_events_db, org_a)
    order = await order_in(payment_events_db, org_a, refs.customer_id)

    (created,) = payment_events.of_type(PaymentOrderCreated)
    assert (created.aggregate_id, created.amount, created.customer_id) == (
        str(order.id),
        1000,
        refs.customer_id,
    )


@pytest.mark.parametrize("amount", [0, -100])
async def test_non_positive_amount_is_invalid(db: Database, org_a: uuid.UUID, amount: int) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(refs.customer_id, amount, "USD")


async def test_malformed_currency_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(refs.customer_id, 100, "US")


async def test_blank_idempotency_key_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.create(refs.customer_id, 100, "USD", idempotency_key=" ")


async def test_unknown_customer_is_refused(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.payment_orders.create(random_id(), 100, "USD")


# -- references to another tenant ---------------------------------------------------


async def test_another_tenants_customer_is_refused(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await refs_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.payment_orders.create(theirs.customer_id, 100, "USD")


async def test_another_tenants_payment_link_is_refused(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    mine, theirs = await refs_in(db, org_a), await refs_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.payment_orders.create(
                mine.customer_id, 100, "USD", payment_link_id=theirs.payment_link_id
            )


async def test_another_tenants_agent_is_refused(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    mine, theirs = await refs_in(db, org_a), await refs_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.payment_orders.create(
                mine.customer_id, 100, "USD", idempotency_key="k", agent_id=theirs.agent_id
            )


async def test_another_tenants_order_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await order_in(db, org_b, (await refs_in(db, org_b)).customer_id)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_orders.get(theirs.id)


# -- idempotency --------------------------------------------------------------------


async def test_same_idempotency_key_returns_the_existing_order(
    db: Database, org_a: uuid.UUID
) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        first = await uow.payment_orders.create(refs.customer_id, 700, "USD", idempotency_key="k1")
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        again = await uow.payment_orders.create(refs.customer_id, 700, "USD", idempotency_key="k1")
        assert again.id == first.id
        assert await uow.payment_orders.count() == 1


async def test_replayed_key_raises_no_second_created_event(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    refs = await refs_in(payment_events_db, org_a)
    for _ in range(2):
        async with payment_events_db.unit_of_work(org_a) as uow:
            await uow.payment_orders.create(refs.customer_id, 700, "USD", idempotency_key="k2")
            await uow.commit()

    assert len(payment_events.of_type(PaymentOrderCreated)) == 1


async def test_key_replayed_with_other_parameters_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    refs = await refs_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        await uow.payment_orders.create(refs.customer_id, 700, "USD", idempotency_key="k3")
        with pytest.raises(IdempotencyKeyReused):
            await uow.payment_orders.create(refs.customer_id, 701, "USD", idempotency_key="k3")


async def test_tenants_have_separate_idempotency_keys(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    mine, theirs = await refs_in(db, org_a), await refs_in(db, org_b)
    async with db.unit_of_work(org_b) as uow:
        their_order = await uow.payment_orders.create(
            theirs.customer_id, 700, "USD", idempotency_key="shared"
        )
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        my_order = await uow.payment_orders.create(
            mine.customer_id, 700, "USD", idempotency_key="shared"
        )
        assert my_order.id != their_order.id


async def test_concurrent_creations_with_one_key_make_one_order(
    db: Database, org_a: uuid.UUID
) -> None:
    refs = await refs_in(db, org_a)

    async with db.unit_of_work(org_a) as first, db.unit_of_work(org_a) as second:
        created = await first.payment_orders.create(
            refs.customer_id, 900, "USD", idempotency_key="race"
        )
        pid = await backend_pid(second.session)
        replay = asyncio.create_task(
            second.payment_orders.create(refs.customer_id, 900, "USD", idempotency_key="race")
        )
        await wait_until_blocked(db.engine, pid)
        await first.commit()
        replayed = await replay
        await second.commit()

        assert replayed.id == created.id
    async with db.unit_of_work(org_a) as uow:
        assert await uow.payment_orders.count() == 1


# -- lifecycle ----------------------------------------------------------------------


async def test_order_moves_along_the_lifecycle(db: Database, org_a: uuid.UUID) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    await move(db, org_a, order.id, "authorized", "paid", "refunded")

    async with db.unit_of_work(org_a) as uow:
        stored = await uow.payment_orders.get(order.id)
        assert (stored.status, stored.version) == ("refunded", 4)


@pytest.mark.parametrize(
    "path",
    [
        ("authorized", "failed"),
        ("authorized", "cancelled"),
        ("failed",),
        ("cancelled",),
    ],
)
async def test_order_may_fail_or_be_cancelled_before_payment(
    db: Database, org_a: uuid.UUID, path: tuple[str, ...]
) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    await move(db, org_a, order.id, *path)

    async with db.unit_of_work(org_a) as uow:
        assert (await uow.payment_orders.get(order.id)).status == path[-1]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ((), "paid"),
        ((), "refunded"),
        ((), "pending"),
        (("authorized",), "pending"),
        (("authorized", "paid"), "cancelled"),
        (("authorized", "paid"), "failed"),
        (("authorized", "paid", "refunded"), "paid"),
        (("cancelled",), "authorized"),
        (("failed",), "authorized"),
    ],
)
async def test_transition_outside_the_lifecycle_is_refused(
    db: Database, org_a: uuid.UUID, path: tuple[str, ...], refused: str
) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    await move(db, org_a, order.id, *path)

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidTransition):
            await uow.payment_orders.transition(order.id, refused)


async def test_transition_to_an_unknown_status_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.transition(order.id, "shipped")


async def test_transition_of_an_unknown_order_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_orders.transition(random_id(), "authorized")


async def test_transition_of_another_tenants_order_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await order_in(db, org_b, (await refs_in(db, org_b)).customer_id)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_orders.transition(theirs.id, "authorized")


async def test_transition_raises_status_changed(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    refs = await refs_in(payment_events_db, org_a)
    order = await order_in(payment_events_db, org_a, refs.customer_id)
    await move(payment_events_db, org_a, order.id, "authorized", "paid")

    changed = payment_events.of_type(PaymentOrderStatusChanged)
    assert [(e.aggregate_id, e.old_status, e.new_status) for e in changed] == [
        (str(order.id), "pending", "authorized"),
        (str(order.id), "authorized", "paid"),
    ]


async def test_generic_update_cannot_change_status(db: Database, org_a: uuid.UUID) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.update(order.id, {"status": "paid"})


# -- optimistic concurrency ---------------------------------------------------------


async def test_transition_with_the_current_version_succeeds(db: Database, org_a: uuid.UUID) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    async with db.unit_of_work(org_a) as uow:
        moved = await uow.payment_orders.transition(order.id, "authorized", expected_version=1)
        assert moved.version == 2


async def test_transition_with_a_stale_version_is_a_conflict(
    db: Database, org_a: uuid.UUID
) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)
    await move(db, org_a, order.id, "authorized")

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(Conflict):
            await uow.payment_orders.transition(order.id, "paid", expected_version=1)


async def test_concurrent_transitions_let_exactly_one_win(db: Database, org_a: uuid.UUID) -> None:
    order = await order_in(db, org_a, (await refs_in(db, org_a)).customer_id)

    async with db.unit_of_work(org_a) as first, db.unit_of_work(org_a) as second:
        await first.payment_orders.get(order.id)
        await second.payment_orders.get(order.id)  # both read version 1
        await first.payment_orders.transition(order.id, "authorized")
        pid = await backend_pid(second.session)
        losing = asyncio.create_task(second.payment_orders.transition(order.id, "cancelled"))
        await wait_until_blocked(db.engine, pid)
        await first.commit()
        with pytest.raises(Conflict):
            await losing

    async with db.unit_of_work(org_a) as uow:
        stored = await uow.payment_orders.get(order.id)
        assert (stored.status, stored.version) == ("authorized", 2)


# -- listing ------------------------------------------------------------------------


async def test_list_defaults_to_newest_first(db: Database, org_a: uuid.UUID) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    ids = [(await order_in(db, org_a, customer_id)).id for _ in range(3)]

    async with db.unit_of_work(org_a) as uow:
        assert [o.id for o in await uow.payment_orders.list()] == ids[::-1]


async def test_list_with_unknown_sort_key_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.list(order_by=["-idempotency_key"])


# -- reports ------------------------------------------------------------------------


async def add_order(
    db: Database,
    org_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    amount: int,
    currency: str = "USD",
    status: str = "pending",
    created_at: datetime | None = None,
) -> None:
    async with db.unit_of_work(org_id) as uow:
        order = PaymentOrder(
            customer_id=customer_id, amount=amount, currency=currency, status=status
        )
        if created_at is not None:
            order.created_at = created_at
        await uow.payment_orders.add(order)
        await uow.commit()


async def test_totals_are_grouped_by_status_and_currency(db: Database, org_a: uuid.UUID) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    for amount, currency, status in [
        (100, "USD", "paid"),
        (250, "USD", "paid"),
        (70, "EUR", "paid"),
        (40, "USD", "pending"),
    ]:
        await add_order(db, org_a, customer_id, amount=amount, currency=currency, status=status)

    async with db.unit_of_work(org_a) as uow:
        totals = await uow.payment_orders.totals_by_status_and_currency()

    assert totals == [
        OrderTotal("paid", "EUR", 1, 70),
        OrderTotal("paid", "USD", 2, 350),
        OrderTotal("pending", "USD", 1, 40),
    ]


async def test_totals_apply_a_specification(db: Database, org_a: uuid.UUID) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    await add_order(db, org_a, customer_id, amount=100, status="paid")
    await add_order(db, org_a, customer_id, amount=900, status="paid")

    async with db.unit_of_work(org_a) as uow:
        totals = await uow.payment_orders.totals_by_status_and_currency(
            PaymentOrderSpecs.amount_between(0, 500)
        )

    assert totals == [OrderTotal("paid", "USD", 1, 100)]


async def test_totals_never_include_another_tenant(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    await add_order(db, org_b, (await refs_in(db, org_b)).customer_id, amount=5, status="paid")

    async with db.unit_of_work(org_a) as uow:
        assert await uow.payment_orders.totals_by_status_and_currency() == []


async def test_revenue_per_day_fills_days_without_payments_with_zero(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    for day, amount in [(1, 100), (1, 50), (3, 200)]:
        created = datetime(2026, 3, day, 12, tzinfo=UTC)
        await add_order(db, org_a, customer_id, amount=amount, status="paid", created_at=created)

    async with db.unit_of_work(org_a) as uow:
        revenue = await uow.payment_orders.revenue_per_day(
            "USD", date(2026, 3, 1), date(2026, 3, 4)
        )

    assert revenue == [
        DailyRevenue(date(2026, 3, 1), 150, 2),
        DailyRevenue(date(2026, 3, 2), 0, 0),
        DailyRevenue(date(2026, 3, 3), 200, 1),
        DailyRevenue(date(2026, 3, 4), 0, 0),
    ]


async def test_revenue_counts_only_paid_orders_in_the_currency(
    db: Database, org_a: uuid.UUID
) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    created = datetime(2026, 4, 1, 12, tzinfo=UTC)
    await add_order(db, org_a, customer_id, amount=100, status="paid", created_at=created)
    await add_order(db, org_a, customer_id, amount=1, status="refunded", created_at=created)
    await add_order(db, org_a, customer_id, amount=2, status="pending", created_at=created)
    await add_order(
        db, org_a, customer_id, amount=3, currency="EUR", status="paid", created_at=created
    )

    async with db.unit_of_work(org_a) as uow:
        revenue = await uow.payment_orders.revenue_per_day(
            "USD", date(2026, 4, 1), date(2026, 4, 1)
        )

    assert revenue == [DailyRevenue(date(2026, 4, 1), 100, 1)]


async def test_revenue_days_are_utc_days(db: Database, org_a: uuid.UUID) -> None:
    customer_id = (await refs_in(db, org_a)).customer_id
    just_before_midnight = datetime(2026, 5, 1, 23, 59, 59, tzinfo=UTC)
    midnight = datetime(2026, 5, 2, 0, 0, tzinfo=UTC)
    for created in (just_before_midnight, midnight):
        await add_order(db, org_a, customer_id, amount=10, status="paid", created_at=created)

    async with db.unit_of_work(org_a) as uow:
        revenue = await uow.payment_orders.revenue_per_day(
            "USD", date(2026, 5, 1), date(2026, 5, 2)
        )

    assert [r.order_count for r in revenue] == [1, 1]


async def test_revenue_range_ending_before_it_starts_is_invalid(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.revenue_per_day("USD", date(2026, 5, 2), date(2026, 5, 1))


async def test_revenue_range_longer_than_ten_years_is_invalid(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_orders.revenue_per_day("USD", date(2000, 1, 1), date(2020, 1, 1))
