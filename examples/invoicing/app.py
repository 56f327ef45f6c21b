"""The service's HTTP API: FastAPI, with the Database created in the lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from models import Invoice
from pydantic import BaseModel, Field
from unit_of_work import InvoicingDatabase, InvoicingUnitOfWork

from tenancy import TenancySettings
from tenancy.web.asgi import DATABASE_STATE_KEY
from tenancy.web.auth_settings import AuthSettings
from tenancy.web.fastapi import install_problem_handlers, tenant_unit_of_work
from tenancy.web.middleware import TenantMiddleware

#: The request's unit of work, typed as the service's own class.
UnitOfWork = Annotated[InvoicingUnitOfWork, Depends(tenant_unit_of_work)]


class LineIn(BaseModel):
    """A line of a new invoice."""

    description: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1)
    unit_amount: int = Field(ge=0)


class InvoiceIn(BaseModel):
    """A new invoice."""

    customer_id: uuid.UUID
    number: str = Field(min_length=1, max_length=32)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[LineIn] = Field(min_length=1)


class InvoiceOut(BaseModel):
    """An invoice with its total."""

    id: uuid.UUID
    customer_id: uuid.UUID
    number: str
    currency: str
    status: str
    total: int


def create_app(
    settings: TenancySettings | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """Return the app; the ``Database`` is connected by the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        db = await InvoicingDatabase.connect(settings or TenancySettings())
        try:
            # The middleware's membership check and the dependency find it here.
            yield {DATABASE_STATE_KEY: db}
        finally:
            await db.dispose()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TenantMiddleware, settings=auth or AuthSettings())
    install_problem_handlers(app)

    async def described(uow: InvoicingUnitOfWork, invoice: Invoice) -> InvoiceOut:
        return InvoiceOut(
            id=invoice.id,
            customer_id=invoice.customer_id,
            number=invoice.number,
            currency=invoice.currency,
            status=invoice.status,
            total=await uow.invoices.total(invoice.id),
        )

    @app.post("/invoices", status_code=201)
    async def create_invoice(body: InvoiceIn, uow: UnitOfWork) -> InvoiceOut:
        invoice = await uow.invoices.add(
            Invoice(customer_id=body.customer_id, number=body.number, currency=body.currency)
        )
        for line in body.lines:
            await uow.invoice_lines.add_line(
                invoice.id, line.description, line.quantity, line.unit_amount
            )
        answer = await described(uow, invoice)
        await uow.commit()
        return answer

    @app.get("/invoices/{invoice_id}")
    async def get_invoice(invoice_id: uuid.UUID, uow: UnitOfWork) -> InvoiceOut:
        # Another organization's invoice is not visible: NotFound, a 404.
        return await described(uow, await uow.invoices.get(invoice_id))

    @app.get("/invoices")
    async def list_invoices(uow: UnitOfWork) -> list[InvoiceOut]:
        return [await described(uow, invoice) for invoice in await uow.invoices.list()]

    return app
