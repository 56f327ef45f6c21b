"""The service's repositories in its extended unit of work, under the library's isolation."""

from __future__ import annotations

import uuid

import pytest
from models import Invoice
from unit_of_work import InvoicingDatabase

from tenancy import Conflict, ForeignKeyViolation, NotFound
from tests.conftest import Tenant


async def _invoice(db: InvoicingDatabase, tenant: Tenant, number: str = "INV-1") -> uuid.UUID:
    async with db.unit_of_work(tenant.org_id) as uow:
        invoice = await uow.invoices.add(
            Invoice(customer_id=tenant.customer_id, number=number, currency="EUR")
        )
        await uow.invoice_lines.add_line(invoice.id, "consulting", 3, 15_000)
        await uow.invoice_lines.add_line(invoice.id, "travel", 1, 4_200)
        await uow.commit()
    return invoice.id


async def test_an_invoice_and_its_lines_commit_in_one_unit_of_work(
    db: InvoicingDatabase, tenant_a: Tenant
) -> None:
    invoice_id = await _invoice(db, tenant_a)

    async with db.unit_of_work(tenant_a.org_id) as uow:
        invoice = await uow.invoices.get(invoice_id)
        customer = await uow.customers.get(invoice.customer_id)
        total = await uow.invoices.total(invoice_id)

    assert invoice.org_id == tenant_a.org_id
    assert customer.id == tenant_a.customer_id
    assert total == 49_200


async def test_another_organization_sees_none_of_the_invoices_or_lines(
    db: InvoicingDatabase, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    invoice_id = await _invoice(db, tenant_a)

    async with db.unit_of_work(tenant_b.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.invoices.get(invoice_id)
        assert await uow.invoice_lines.of_invoice(invoice_id) == []
        assert await uow.invoices.total(invoice_id) == 0


async def test_an_invoice_for_another_organizations_customer_is_refused(
    db: InvoicingDatabase, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    async with db.unit_of_work(tenant_a.org_id) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.invoices.add(
                Invoice(customer_id=tenant_b.customer_id, number="X-1", currency="EUR")
            )


async def test_a_line_on_another_organizations_invoice_is_refused(
    db: InvoicingDatabase, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    invoice_of_b = await _invoice(db, tenant_b)

    async with db.unit_of_work(tenant_a.org_id) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.invoice_lines.add_line(invoice_of_b, "smuggled", 1, 1)


async def test_a_duplicate_invoice_number_in_one_organization_is_a_conflict(
    db: InvoicingDatabase, tenant_a: Tenant
) -> None:
    await _invoice(db, tenant_a, number="INV-7")

    with pytest.raises(Conflict):
        await _invoice(db, tenant_a, number="INV-7")


async def test_the_same_number_in_two_organizations_is_no_conflict(
    db: InvoicingDatabase, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    first = await _invoice(db, tenant_a, number="INV-9")
    second = await _invoice(db, tenant_b, number="INV-9")

    assert first != second


async def test_invoices_are_listed_by_number_prefix_through_a_prepared_specification(
    db: InvoicingDatabase, tenant_a: Tenant
) -> None:
    for number in ("2026-002", "2026-001", "2025-009"):
        await _invoice(db, tenant_a, number)

    async with db.unit_of_work(tenant_a.org_id) as uow:
        this_year = await uow.invoices.numbered("2026-")
        last_year = await uow.invoices.numbered("2025-")

    assert [s.number for s in this_year] == ["2026-001", "2026-002"]
    assert [s.number for s in last_year] == ["2025-009"]


async def test_a_number_prefix_lists_only_the_organizations_invoices(
    db: InvoicingDatabase, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await _invoice(db, tenant_a, "SHARED-1")
    await _invoice(db, tenant_b, "SHARED-2")

    async with db.unit_of_work(tenant_b.org_id) as uow:
        listed = await uow.invoices.numbered("SHARED-")

    assert [s.number for s in listed] == ["SHARED-2"]
