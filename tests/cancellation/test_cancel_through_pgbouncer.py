"""The same cancellations through pgbouncer in transaction pooling mode.

Behind pgbouncer the state a cancelled unit of work leaves is on a server
connection that pgbouncer hands to whichever client comes next. Here both pools
hold one connection (the client's, and pgbouncer's ``_single`` database), so A
gets B's server connection whenever B left it in a transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.testing.pgbouncer import Bouncer, running_pgbouncer
from tests.cancellation.campaign import cancel_at_each_suspension, interrupt_tasks, one_connection
from tests.cancellation.stepper import Landing
from tests.cancellation.tenants import Tenant, Witness
from tests.cancellation.workloads import WORKLOADS, Workload, two_reads

pytestmark = pytest.mark.security

ATTEMPTS = 60
WINDOW_S = 0.002


@pytest.fixture(scope="module")
async def pgbouncer(settings: TenancySettings) -> AsyncIterator[Bouncer]:
    """pgbouncer in transaction pooling mode in front of the test database."""
    async with running_pgbouncer(settings.app_url()) as bouncer:
        yield bouncer


@pytest.fixture
async def bounced_db(settings: TenancySettings, pgbouncer: Bouncer) -> AsyncIterator[Database]:
    """A one-connection ``Database`` through pgbouncer's one-server-connection pool."""
    url = pgbouncer.url(settings.app_url(), single=True)
    bounced = settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "pooler": "pgbouncer-transaction",
        }
    )
    database = await PlatformDatabase.connect(one_connection(bounced))
    yield database
    await database.dispose()


@pytest.mark.parametrize("landing", [pytest.param(x, id=x.value) for x in Landing])
@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_at_any_await_behind_pgbouncer(
    bounced_db: Database,
    witness: Witness,
    tenant_b: Tenant,
    workload: Workload,
    landing: Landing,
) -> None:
    tally = await cancel_at_each_suspension(
        bounced_db, witness, tenant_b, workload, landing=landing
    )

    assert tally.clean, tally.report()


async def test_a_sees_only_its_rows_after_b_is_cancelled_at_a_random_moment_behind_pgbouncer(
    bounced_db: Database, witness: Witness, tenant_b: Tenant
) -> None:
    def cancel_at_random(task: asyncio.Task[None]) -> str:
        delay = random.uniform(0, WINDOW_S)
        asyncio.get_running_loop().call_later(delay, task.cancel)
        return f" cancelled after {delay * 1e6:.0f} us"

    tally = await interrupt_tasks(
        bounced_db, witness, tenant_b, two_reads, attempts=ATTEMPTS, interrupt=cancel_at_random
    )

    assert tally.clean, tally.report()
