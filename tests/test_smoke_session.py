import uuid

from sqlalchemy import func, select, text

from models import Customer
from tenancy import Database


async def test_each_tenant_sees_only_its_customer(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    for org in (org_a, org_b):
        async with db.session(org) as s:
            s.add(Customer(email="a@b.c"))
    async with db.session(org_a) as s:
        assert (await s.execute(select(func.count()).select_from(Customer))).scalar() == 1
        assert (await s.execute(text("select current_user"))).scalar() == "tenancy_app"
