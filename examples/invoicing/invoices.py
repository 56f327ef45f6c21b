"""The service's repositories: invoices and their lines, on the library's generic base.

Tenant-agnostic like the library's own: the tenant transaction and the
database policies decide which rows exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from models import Invoice, InvoiceLine
from sqlalchemy import bindparam, func, select

from repositories import AsyncRepository
from tenancy import InvalidData
from tenancy.specification import Specification

#: Invoices whose number starts with a prefix: built once, bound per call.
NUMBERED = Specification[Invoice](Invoice.number.startswith(bindparam("prefix")))


@dataclass(frozen=True)
class InvoiceSummary:
    """What a listing of invoices shows: immutable, no ORM instance behind it."""

    id: uuid.UUID
    number: str
    currency: str
    status: str


class InvoiceRepository(AsyncRepository[Invoice, uuid.UUID]):
    """Storage of ``Invoice`` aggregates; the number is unique per organization."""

    model = Invoice
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "number": "number"}
    natural_key: ClassVar = ("number",)

    async def numbered(self, prefix: str) -> list[InvoiceSummary]:
        """Return summaries of the invoices whose number starts with ``prefix``, by number."""
        return await self.read(InvoiceSummary, NUMBERED.bind(prefix=prefix), order_by=["number"])

    async def total(self, invoice_id: uuid.UUID) -> int:
        """Return the sum of the invoice's lines, in minor units (0 without lines)."""
        statement = select(
            func.coalesce(func.sum(InvoiceLine.quantity * InvoiceLine.unit_amount), 0)
        ).where(InvoiceLine.invoice_id == invoice_id)
        result = await self._execute(statement)
        return int(result.scalar_one())


class InvoiceLineRepository(AsyncRepository[InvoiceLine, uuid.UUID]):
    """Storage of invoice lines."""

    model = InvoiceLine

    async def add_line(
        self, invoice_id: uuid.UUID, description: str, quantity: int, unit_amount: int
    ) -> InvoiceLine:
        """Add a line to the invoice.

        Raises:
            InvalidData: a quantity below 1 or a negative amount.
            ForeignKeyViolation: no invoice of this organization has that id.
        """
        if quantity < 1 or unit_amount < 0:
            raise InvalidData("a line needs a quantity of at least 1 and an amount of at least 0")
        line = InvoiceLine(
            invoice_id=invoice_id,
            description=description,
            quantity=quantity,
            unit_amount=unit_amount,
        )
        return await self.add(line)

    async def of_invoice(self, invoice_id: uuid.UUID) -> list[InvoiceLine]:
        """Return the invoice's lines, oldest first."""
        statement = (
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.created_at, InvoiceLine.id)
        )
        result = await self._execute(statement)
        return list(result.scalars())
