"""Work cancelled while its pool connection opens: nothing logged, and isolation holds.

In a service a unit of work is cancelled whenever a client disconnects or a
request times out, sometimes while the pool is still opening its connection
(asyncpg negotiating TLS first, as it does by default). The library must leave no
exception behind for asyncio to log at ERROR, and the next organization on the
pool must still see only its own invoices.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from models import Invoice
from unit_of_work import InvoicingDatabase

from tenancy import TenancySettings
from tests.conftest import Tenant

#: Spread over a local connect (a few milliseconds).
DELAYS_S = [step * 0.000_05 for step in range(40)]


async def test_listings_cancelled_while_connecting_log_nothing_and_the_next_tenant_sees_its_own(
    settings: TenancySettings, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    one_connection = settings.model_copy(update={"pool_size": 1, "max_overflow": 0})
    db = await InvoicingDatabase.connect(one_connection)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reports.append(context))
    try:
        ours = await _add_invoice(db, tenant_a, "A-1")
        await _add_invoice(db, tenant_b, "B-1")
        cancelled, seen = 0, []
        for delay in DELAYS_S * 2:
            await db.engine.dispose()  # so that B's listing opens the connection
            listing = asyncio.create_task(_numbers(db, tenant_b))
            loop.call_later(delay, listing.cancel)
            await asyncio.wait([listing])
            cancelled += listing.cancelled()
            gc.collect()  # an exception no one retrieved is reported when collected
            seen.append(await _numbers(db, tenant_a))
    finally:
        loop.set_exception_handler(previous)
        await db.dispose()

    assert cancelled > len(DELAYS_S) // 2, "the sweep must cancel connects, not finished work"
    assert [context["message"] for context in reports] == []
    assert all(numbers == [ours] for numbers in seen)


async def _add_invoice(db: InvoicingDatabase, tenant: Tenant, number: str) -> str:
    async with db.unit_of_work(tenant.org_id) as uow:
        await uow.invoices.add(
            Invoice(customer_id=tenant.customer_id, number=number, currency="EUR")
        )
        await uow.commit()
    return number


async def _numbers(db: InvoicingDatabase, tenant: Tenant) -> list[str]:
    async with db.unit_of_work(tenant.org_id) as uow:
        return [summary.number for summary in await uow.invoices.numbered("")]
