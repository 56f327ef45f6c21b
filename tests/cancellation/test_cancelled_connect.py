"""A connect cancelled mid-handshake: nothing for the event loop to log, and isolation holds.

asyncpg negotiates TLS first (``sslmode=prefer`` is its default). A unit of work
cancelled while its pool connection is being opened (a client gone, a timeout)
used to leave an exception on that negotiation's future that nobody awaited, and
asyncio logged "Future exception was never retrieved" at ERROR. The suite-wide
``loop_reports_nothing`` fixture fails any test during which the loop reports
such an error; these tests make the cancelled connect happen on purpose.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import pytest

from tenancy import Database
from tenancy.internals import quiet_cancelled_tls_negotiation, tls_negotiation_is_quiet
from tests.cancellation.campaign import interrupt_tasks
from tests.cancellation.tenants import Tenant, Witness
from tests.cancellation.workloads import two_reads
from tests.internals.test_canary import tls_negotiation

pytestmark = pytest.mark.security

#: Cancellation delays swept across a local connect (a few milliseconds): about a
#: third used to land in the window, between the socket opening and asyncpg's
#: protocol awaiting the server's answer.
DELAYS_S = [step * 0.000_05 for step in range(40)]


async def test_units_of_work_cancelled_while_connecting_leave_nothing_for_the_loop_to_log(
    one_connection_db: Database, loop_reports: list[dict[str, Any]]
) -> None:
    cancelled = 0
    for _ in range(3):
        for delay in DELAYS_S:
            await one_connection_db.engine.dispose()  # so the unit of work opens its connection
            task = asyncio.create_task(_read_nothing(one_connection_db))
            asyncio.get_running_loop().call_later(delay, task.cancel)
            await asyncio.wait([task])
            cancelled += task.cancelled()
            gc.collect()  # a future no one retrieved is reported when it is collected

    assert cancelled > len(DELAYS_S), "the sweep must cancel connects, not finished work"
    assert [context["message"] for context in loop_reports] == []


async def test_a_sees_only_its_rows_after_b_is_cancelled_by_a_timeout_while_connecting(
    one_connection_db: Database, witness: Witness, tenant_b: Tenant
) -> None:
    delays = iter(DELAYS_S * 2)

    async def within_a_timeout(work: Any) -> None:
        await one_connection_db.engine.dispose()
        async with asyncio.timeout(next(delays)):
            await work

    tally = await interrupt_tasks(
        one_connection_db,
        witness,
        tenant_b,
        two_reads,
        attempts=len(DELAYS_S) * 2,
        wrap=within_a_timeout,
    )

    assert tally.clean, tally.report()


async def test_the_quiet_negotiation_still_hands_its_error_to_whoever_awaits_it() -> None:
    quiet_cancelled_tls_negotiation()
    negotiation = _negotiation()
    waiting = asyncio.ensure_future(negotiation.on_data)

    negotiation.connection_lost(None)

    with pytest.raises(ConnectionError, match="unexpected connection_lost"):
        await waiting


async def test_the_quiet_negotiation_keeps_the_server_answer() -> None:
    quiet_cancelled_tls_negotiation()
    negotiation = _negotiation()

    negotiation.data_received(b"N")
    negotiation.connection_lost(None)

    assert negotiation.on_data.result() is False


def test_installing_the_quiet_negotiation_twice_keeps_it_installed() -> None:
    quiet_cancelled_tls_negotiation()
    quiet_cancelled_tls_negotiation()

    assert tls_negotiation_is_quiet()


async def _read_nothing(database: Database) -> None:
    async with database.unit_of_work(uuid.uuid4()) as uow:
        await uow.customers.count()


def _negotiation() -> Any:
    from asyncpg import connect_utils

    return tls_negotiation(connect_utils.TLSUpgradeProto)
