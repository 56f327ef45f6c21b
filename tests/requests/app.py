"""A small FastAPI service over the library, as a user of it would write one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from repositories.models import Customer, PaymentMethod
from tenancy import Database, current_tenant
from tenancy.web.auth_settings import AuthSettings
from tenancy.web.fastapi import (
    DATABASE_STATE_KEY,
    CurrentIdentity,
    TenantUnitOfWork,
    install_problem_handlers,
)
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware


class NewCustomer(BaseModel):
    """Body of a customer creation."""

    email: str
    name: str = ""


def customer_json(customer: Customer) -> dict[str, Any]:
    """Return the public fields of ``customer``, its organization included."""
    return {
        "id": str(customer.id),
        "org_id": str(customer.org_id),
        "email": customer.email,
        "name": customer.name,
    }


def build_app(db: Database, auth: AuthSettings) -> FastAPI:
    """Return the service: customer endpoints behind the tenant middleware."""
    app = FastAPI()
    setattr(app.state, DATABASE_STATE_KEY, db)
    install_problem_handlers(app)
    app.add_middleware(TenantMiddleware, settings=auth, membership=UnitOfWorkMembershipCheck(db))

    @app.get("/whoami")
    async def whoami(identity: CurrentIdentity) -> dict[str, str]:
        return {
            "org_id": str(identity.org_id),
            "user_id": str(identity.user_id),
            "bound": str(current_tenant()),
        }

    @app.get("/customers")
    async def list_customers(uow: TenantUnitOfWork) -> list[dict[str, Any]]:
        return [customer_json(c) for c in await uow.customers.list(order_by=["email"])]

    @app.get("/customers/{customer_id}")
    async def get_customer(customer_id: uuid.UUID, uow: TenantUnitOfWork) -> dict[str, Any]:
        return customer_json(await uow.customers.get(customer_id))

    @app.post("/customers", status_code=201)
    async def create_customer(body: NewCustomer, uow: TenantUnitOfWork) -> dict[str, Any]:
        customer = await uow.customers.add(Customer(email=body.email, name=body.name))
        await uow.commit()
        return customer_json(customer)

    @app.post("/customers/{customer_id}/payment-methods", status_code=201)
    async def add_payment_method(customer_id: uuid.UUID, uow: TenantUnitOfWork) -> dict[str, str]:
        method = PaymentMethod(customer_id=customer_id, type="card", last4="4242")
        uow.session.add(method)
        await uow.commit()
        return {"id": str(method.id)}

    @app.post("/bugs/customers-for/{org_id}", status_code=201)
    async def create_customer_for(org_id: uuid.UUID, uow: TenantUnitOfWork) -> dict[str, Any]:
        # A defect on purpose: it writes a row naming another organization.
        customer = await uow.customers.add(Customer(org_id=org_id, email="bug@example.com"))
        await uow.commit()
        return customer_json(customer)

    return app
