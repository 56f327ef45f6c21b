"""The refusal steps of ``tenancy demo``: tenant A reaches for tenant B's rows and fails.

Reads go through a repository and through hand-written SQL on the unit of work's
driver connection; the SQL names no tenant at all, so what it cannot see or
change is the row policy's doing. Every write is refused by the database itself
(RLS ``WITH CHECK``, or a composite foreign key) and reaches the caller as the
library's typed error. An attempt that succeeds ends the demo with an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from repositories.database import PlatformDatabase
from repositories.demo.output import Console, short
from repositories.demo.story import StoryOutcome
from repositories.models import Customer
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy.errors import ConfigurationError, TenancyError, TenantContextRequired


async def show_read_refusals(db: PlatformDatabase, console: Console, outcome: StoryOutcome) -> None:
    """As A: read B's customer by id, count a whole table, delete B's row by id."""
    console.section("Cross-tenant reads: the other tenant's rows are invisible")
    acme, globex = outcome.tenants
    target = globex.customer_ids[0]
    console.line(f"as {acme.plan.name} (org {short(acme.org_id)}):")
    error = await _refused(db, acme.org_id, lambda uow: uow.customers.get(target))
    outcome.refusals["read"] = type(error).__name__
    console.outcome(
        f"get customer {short(target)} of {globex.plan.name}", f"{_named(error)}: not visible"
    )
    async with db.unit_of_work(acme.org_id) as uow:
        driver = await uow.driver()
        # Hand-written SQL with no tenant in it: only the row policy filters it.
        outcome.raw_count = await driver.fetchval("SELECT count(*) FROM customers")
        outcome.deleted = await driver.execute("DELETE FROM customers WHERE id = $1", target)
        await uow.commit()
    total = sum(len(names) for names in outcome.visible_customers.values())
    console.outcome(
        "SELECT count(*) FROM customers", f"{outcome.raw_count} (the table holds {total})"
    )
    console.outcome(
        f"DELETE FROM customers WHERE id = '{short(target)}...'",
        f"{outcome.deleted} (no row visible)",
    )
    try:
        db.unit_of_work()
    except TenantContextRequired as exc:
        outcome.refusals["no tenant"] = type(exc).__name__
        console.line("with no tenant bound:")
        console.outcome("db.unit_of_work()", f"{type(exc).__name__} (no SQL is run)")
    else:
        raise ConfigurationError("a unit of work opened with no tenant bound")


async def show_write_refusals(
    db: PlatformDatabase, console: Console, outcome: StoryOutcome
) -> None:
    """As A: write rows that belong to, point at, or move to B; the database refuses each."""
    console.section("Cross-tenant writes: refused by the database, raised as typed errors")
    acme, globex = outcome.tenants

    async def planted_customer(uow: PlatformUnitOfWork) -> object:
        return await uow.customers.add(
            Customer(org_id=globex.org_id, name="Planted", email="planted@evil.example")
        )

    async def foreign_payment_method(uow: PlatformUnitOfWork) -> object:
        driver = await uow.driver()
        # org_id is left to its default, the current tenant (A); the customer is B's.
        return await driver.execute(
            "INSERT INTO payment_methods (customer_id, type, label) VALUES ($1, $2, $3)",
            globex.customer_ids[0],
            "card",
            "planted",
        )

    async def moved_customer(uow: PlatformUnitOfWork) -> object:
        driver = await uow.driver()
        return await driver.execute(
            "UPDATE customers SET org_id = $1 WHERE id = $2", globex.org_id, acme.customer_ids[0]
        )

    attempts: list[tuple[str, str, Callable[[PlatformUnitOfWork], Awaitable[object]]]] = [
        ("insert", f"insert a customer with org_id of {globex.plan.name}", planted_customer),
        (
            "reference",
            f"add a payment method to customer {short(globex.customer_ids[0])}",
            foreign_payment_method,
        ),
        (
            "move",
            f"move customer {short(acme.customer_ids[0])} to {globex.plan.name}",
            moved_customer,
        ),
    ]
    console.line(f"as {acme.plan.name} (org {short(acme.org_id)}):")
    for key, attempt, action in attempts:
        error = await _refused(db, acme.org_id, action)
        outcome.refusals[key] = type(error).__name__
        console.outcome(attempt, _named(error))


async def _refused(
    db: PlatformDatabase,
    org_id: uuid.UUID,
    action: Callable[[PlatformUnitOfWork], Awaitable[object]],
) -> TenancyError:
    """Run ``action`` in its own unit of work and return the error it must end with.

    Raises:
        ConfigurationError: the action succeeded: isolation is not in force.
    """
    try:
        async with db.unit_of_work(org_id) as uow:
            await action(uow)
            await uow.commit()
    except TenancyError as exc:
        return exc
    raise ConfigurationError(
        "a cross-tenant operation succeeded: row-level security is not in force"
    )


def _named(error: TenancyError) -> str:
    cause: BaseException | None = error
    sqlstate = None
    while cause is not None and sqlstate is None:
        sqlstate = getattr(cause, "sqlstate", None)
        cause = cause.__cause__
    details = [f"SQLSTATE {sqlstate}"] if sqlstate else []
    constraint = getattr(error, "constraint", None)
    if constraint:
        details.append(constraint)
    return f"{type(error).__name__} ({', '.join(details)})" if details else type(error).__name__
