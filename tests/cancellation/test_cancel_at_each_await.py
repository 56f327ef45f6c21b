"""Tenant B's unit of work cancelled at each of its await points, one after another.

The pool holds one connection, so A's unit of work right after runs on the
connection B's left behind. Whatever B was doing when cancelled (checking the
connection out, BEGIN and SET LOCAL, a statement, COMMIT, closing), A must see
exactly its own rows and its commits must persist, and so must every commit of
B that returned. See ``stepper`` for how the await points are enumerated.
"""

from __future__ import annotations

import pytest

from tenancy import Database
from tests.cancellation.campaign import cancel_at_each_suspension
from tests.cancellation.stepper import Landing
from tests.cancellation.tenants import Tenant, Witness
from tests.cancellation.workloads import WORKLOADS, Workload, two_reads

pytestmark = pytest.mark.security

LANDINGS = [pytest.param(landing, id=landing.value) for landing in Landing]


@pytest.mark.parametrize("landing", LANDINGS)
@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_at_any_await(
    one_connection_db: Database,
    witness: Witness,
    tenant_b: Tenant,
    workload: Workload,
    landing: Landing,
) -> None:
    tally = await cancel_at_each_suspension(
        one_connection_db, witness, tenant_b, workload, landing=landing
    )

    assert tally.clean, tally.report()


@pytest.mark.parametrize("landing", LANDINGS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_while_opening_the_connection(
    one_connection_db: Database, witness: Witness, tenant_b: Tenant, landing: Landing
) -> None:
    # An empty pool: B's checkout connects, so its first await points are the connection's.
    tally = await cancel_at_each_suspension(
        one_connection_db, witness, tenant_b, two_reads, landing=landing, cold=True
    )

    assert tally.clean, tally.report()


@pytest.mark.parametrize("landing", LANDINGS)
@pytest.mark.parametrize("workload", WORKLOADS)
async def test_a_sees_only_its_rows_after_b_is_cancelled_again_at_every_await_of_its_cleanup(
    one_connection_db: Database,
    witness: Witness,
    tenant_b: Tenant,
    workload: Workload,
    landing: Landing,
) -> None:
    # As an anyio cancel scope does: each await of B's cleanup is cancelled too.
    tally = await cancel_at_each_suspension(
        one_connection_db, witness, tenant_b, workload, landing=landing, again=True
    )

    assert tally.clean, tally.report()
