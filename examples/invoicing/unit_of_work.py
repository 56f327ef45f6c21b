"""The service's unit of work: the library's payments repositories plus its own."""

from __future__ import annotations

from invoices import InvoiceLineRepository, InvoiceRepository

from repositories import PlatformUnitOfWork
from tenancy import Database, RepositoryAttribute


class InvoicingUnitOfWork(PlatformUnitOfWork):
    """``uow.customers`` (the library's) and ``uow.invoices`` (ours), one transaction."""

    invoices = RepositoryAttribute(InvoiceRepository)
    invoice_lines = RepositoryAttribute(InvoiceLineRepository)


class InvoicingDatabase(Database[InvoicingUnitOfWork]):
    """``db.unit_of_work(org_id)`` is an ``InvoicingUnitOfWork``."""

    unit_of_work_class = InvoicingUnitOfWork
