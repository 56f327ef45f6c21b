"""Payment links: creation with a public token, filters, bulk expiry, atomic use, token lookup."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from repositories.domain_events import PaymentLinkCreated, PaymentLinkExpired, PaymentLinkUsed
from repositories.errors import PaymentLinkExhausted, PaymentLinkUnavailable
from repositories.models import PaymentLink
from repositories.payment_link_resolver import PaymentLinkResolver
from tenancy import Database, ForeignKeyViolation, InvalidData, NotFound
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    new_price,
    random_id,
    statements_sent,
    wait_until_blocked,
)


def hours(n: float) -> datetime:
    """Return the time ``n`` hours from now (negative: ago)."""
    return datetime.now(UTC) + timedelta(hours=n)


async def price_in(db: Database, org_id: uuid.UUID) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        price = await new_price(uow)
        await uow.commit()
    return price.id


async def link_in(
    db: Database,
    org_id: uuid.UUID,
    *,
    expires_at: datetime | None = None,
    max_uses: int | None = None,
    status: str = "active",
) -> PaymentLink:
    price_id = await price_in(db, org_id)
    async with db.unit_of_work(org_id) as uow:
        link = await uow.payment_links.add(
            PaymentLink(price_id=price_id, expires_at=expires_at, max_uses=max_uses, status=status)
        )
        await uow.commit()
    return link


async def use_count(db: Database, org_id: uuid.UUID, link_id: uuid.UUID) -> int:
    async with db.unit_of_work(org_id) as uow:
        return (await uow.payment_links.get(link_id)).use_count


# -- creation -----------------------------------------------------------------------


async def test_created_link_has_a_url_safe_random_token(db: Database, org_a: uuid.UUID) -> None:
    price_id = await price_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        first = await uow.payment_links.create(price_id)
        second = await uow.payment_links.create(price_id)

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.token)
    assert first.token != second.token


async def test_created_link_is_active_and_unused(db: Database, org_a: uuid.UUID) -> None:
    price_id = await price_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        link = await uow.payment_links.create(price_id, expires_at=hours(48), max_uses=3)

    assert (link.status, link.use_count, link.max_uses) == ("active", 0, 3)


async def test_creation_raises_payment_link_created(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    price_id = await price_in(payment_events_db, org_a)
    async with payment_events_db.unit_of_work(org_a) as uow:
        link = await uow.payment_links.create(price_id, max_uses=2)
        await uow.commit()

    (created,) = payment_events.of_type(PaymentLinkCreated)
    assert (created.aggregate_id, created.price_id, created.max_uses) == (str(link.id), price_id, 2)


async def test_link_to_another_tenants_price_is_refused(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    their_price = await price_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.payment_links.create(their_price)


async def test_zero_max_uses_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    price_id = await price_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_links.create(price_id, max_uses=0)


async def test_naive_expiry_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    price_id = await price_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_links.create(price_id, expires_at=datetime(2030, 1, 1))


# -- reads --------------------------------------------------------------------------


async def test_get_by_token_finds_the_tenants_link(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.payment_links.get_by_token(link.token)).id == link.id


async def test_get_by_token_of_another_tenant_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await link_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_links.get_by_token(theirs.token)


async def test_with_status_filters_by_one_status(db: Database, org_a: uuid.UUID) -> None:
    await link_in(db, org_a)
    inactive = await link_in(db, org_a, status="inactive")
    async with db.unit_of_work(org_a) as uow:
        assert [link.id for link in await uow.payment_links.with_status("inactive")] == [
            inactive.id
        ]


async def test_with_status_filters_by_several_statuses(db: Database, org_a: uuid.UUID) -> None:
    await link_in(db, org_a)
    inactive = await link_in(db, org_a, status="inactive")
    expired = await link_in(db, org_a, status="expired")
    async with db.unit_of_work(org_a) as uow:
        found = await uow.payment_links.with_status("expired", "inactive")
        assert {link.id for link in found} == {inactive.id, expired.id}


async def test_with_unknown_status_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_links.with_status("actve")


async def test_with_no_status_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_links.with_status()


async def test_active_excludes_expired_and_inactive_links(db: Database, org_a: uuid.UUID) -> None:
    forever = await link_in(db, org_a)
    later = await link_in(db, org_a, expires_at=hours(48))
    await link_in(db, org_a, expires_at=hours(-1))
    await link_in(db, org_a, status="inactive")
    async with db.unit_of_work(org_a) as uow:
        found = await uow.payment_links.active()
        assert {link.id for link in found} == {forever.id, later.id}


async def test_active_at_a_given_time_uses_that_time(db: Database, org_a: uuid.UUID) -> None:
    await link_in(db, org_a, expires_at=hours(1))
    later = await link_in(db, org_a, expires_at=hours(48))
    async with db.unit_of_work(org_a) as uow:
        found = await uow.payment_links.active(hours(24))
        assert [link.id for link in found] == [later.id]


async def test_expiring_before_lists_active_links_soonest_first(
    db: Database, org_a: uuid.UUID
) -> None:
    later = await link_in(db, org_a, expires_at=hours(48))
    soon = await link_in(db, org_a, expires_at=hours(1))
    await link_in(db, org_a)
    await link_in(db, org_a, expires_at=hours(1), status="inactive")
    await link_in(db, org_a, expires_at=hours(720))
    async with db.unit_of_work(org_a) as uow:
        found = await uow.payment_links.expiring_before(hours(72))
        assert [link.id for link in found] == [soon.id, later.id]


async def test_expiring_before_a_naive_time_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.payment_links.expiring_before(datetime(2030, 1, 1))


# -- bulk expiry --------------------------------------------------------------------


async def test_expire_overdue_expires_only_overdue_active_links(
    db: Database, org_a: uuid.UUID
) -> None:
    overdue = await link_in(db, org_a, expires_at=hours(-1))
    current = await link_in(db, org_a, expires_at=hours(48))
    inactive = await link_in(db, org_a, expires_at=hours(-1), status="inactive")
    async with db.unit_of_work(org_a) as uow:
        assert await uow.payment_links.expire_overdue() == 1
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        statuses = [(await uow.payment_links.get(link.id)).status for link in (overdue, current)]
        assert statuses == ["expired", "active"]
        assert (await uow.payment_links.get(inactive.id)).status == "inactive"


async def test_expire_overdue_sends_one_update_statement(db: Database, org_a: uuid.UUID) -> None:
    for _ in range(3):
        await link_in(db, org_a, expires_at=hours(-1))
    async with db.unit_of_work(org_a) as uow:
        await uow.payment_links.get_or_none(random_id())  # the transaction has begun
        with statements_sent(db.engine) as sent:
            assert await uow.payment_links.expire_overdue() == 3

    assert len(sent) == 1
    assert sent[0].lstrip().upper().startswith("UPDATE PAYMENT_LINKS")


async def test_expire_overdue_at_a_given_time(db: Database, org_a: uuid.UUID) -> None:
    await link_in(db, org_a, expires_at=hours(1))
    await link_in(db, org_a, expires_at=hours(48))
    async with db.unit_of_work(org_a) as uow:
        assert await uow.payment_links.expire_overdue(hours(24)) == 1


async def test_expire_overdue_raises_one_event_per_link(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    first = await link_in(payment_events_db, org_a, expires_at=hours(-1))
    second = await link_in(payment_events_db, org_a, expires_at=hours(-1))
    async with payment_events_db.unit_of_work(org_a) as uow:
        await uow.payment_links.expire_overdue()
        await uow.commit()

    expired = {e.aggregate_id for e in payment_events.of_type(PaymentLinkExpired)}
    assert expired == {str(first.id), str(second.id)}


async def test_expire_overdue_leaves_other_tenants_links(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await link_in(db, org_b, expires_at=hours(-1))
    async with db.unit_of_work(org_a) as uow:
        assert await uow.payment_links.expire_overdue() == 0
        await uow.commit()

    async with db.unit_of_work(org_b) as uow:
        assert (await uow.payment_links.get(theirs.id)).status == "active"


# -- use ----------------------------------------------------------------------------


async def test_record_use_counts_one_use(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, max_uses=5)
    async with db.unit_of_work(org_a) as uow:
        used = await uow.payment_links.record_use(link.id)
        assert used.use_count == 1
        await uow.commit()

    assert await use_count(db, org_a, link.id) == 1


async def test_record_use_raises_payment_link_used(
    org_a: uuid.UUID, payment_events_db: Database, payment_events: RecordingDispatcher
) -> None:
    link = await link_in(payment_events_db, org_a)
    async with payment_events_db.unit_of_work(org_a) as uow:
        await uow.payment_links.record_use(link.id)
        await uow.payment_links.record_use(link.id)
        await uow.commit()

    used = payment_events.of_type(PaymentLinkUsed)
    assert [(e.aggregate_id, e.use_count) for e in used] == [(str(link.id), 1), (str(link.id), 2)]


async def test_use_beyond_max_uses_is_exhausted(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, max_uses=1)
    async with db.unit_of_work(org_a) as uow:
        await uow.payment_links.record_use(link.id)
        with pytest.raises(PaymentLinkExhausted):
            await uow.payment_links.record_use(link.id)


async def test_use_of_an_expired_link_is_unavailable(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, expires_at=hours(-1))
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(PaymentLinkUnavailable):
            await uow.payment_links.record_use(link.id)


async def test_use_of_an_inactive_link_is_unavailable(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, status="inactive")
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(PaymentLinkUnavailable):
            await uow.payment_links.record_use(link.id)


async def test_use_of_an_unknown_link_is_not_found(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_links.record_use(random_id())


async def test_use_of_another_tenants_link_is_not_found_and_not_counted(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    theirs = await link_in(db, org_b)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.payment_links.record_use(theirs.id)
        await uow.commit()

    assert await use_count(db, org_b, theirs.id) == 0


async def test_concurrent_last_uses_let_exactly_one_win(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, max_uses=1)

    async with db.unit_of_work(org_a) as first, db.unit_of_work(org_a) as second:
        await first.payment_links.record_use(link.id)
        pid = await backend_pid(second.session)
        losing = asyncio.create_task(second.payment_links.record_use(link.id))
        await wait_until_blocked(db.engine, pid)
        await first.commit()
        with pytest.raises(PaymentLinkExhausted):
            await losing

    assert await use_count(db, org_a, link.id) == 1


async def test_many_concurrent_uses_never_exceed_max_uses(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a, max_uses=3)

    async def use_once() -> bool:
        async with db.unit_of_work(org_a) as uow:
            try:
                await uow.payment_links.record_use(link.id)
            except PaymentLinkExhausted:
                return False
            await uow.commit()
            return True

    outcomes = await asyncio.gather(*(use_once() for _ in range(6)))

    assert outcomes.count(True) == 3
    assert await use_count(db, org_a, link.id) == 3


# -- token resolution without a tenant ---------------------------------------------


async def test_resolver_finds_owner_and_link_from_the_token(db: Database, org_a: uuid.UUID) -> None:
    link = await link_in(db, org_a)

    ref = await PaymentLinkResolver(db.engine).resolve(link.token)

    assert (ref.org_id, ref.payment_link_id) == (org_a, link.id)


async def test_resolver_of_an_unknown_token_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await PaymentLinkResolver(db.engine).resolve("no-such-token")


async def test_resolver_of_an_empty_token_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await PaymentLinkResolver(db.engine).resolve("")


async def test_resolved_link_is_readable_in_its_tenant_only(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    link = await link_in(db, org_a)
    ref = await PaymentLinkResolver(db.engine).resolve(link.token)

    async with db.unit_of_work(ref.org_id) as uow:
        assert (await uow.payment_links.get(ref.payment_link_id)).token == link.token
    async with db.unit_of_work(org_b) as uow:
        assert await uow.payment_links.get_or_none(ref.payment_link_id) is None
