"""Every repository method is a coroutine, and none blocks the event loop."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import uuid

import pytest

import repositories
from repositories.base import AsyncRepository
from repositories.models import Customer, Product
from repositories.protocols import Repository
from tenancy import Database, KeysetPage, OffsetPage, Specification

REPOSITORY_CLASSES = [
    cls
    for name in repositories.__all__
    if inspect.isclass(cls := getattr(repositories, name)) and issubclass(cls, AsyncRepository)
]
#: A callback that holds the loop longer than this blocks every other request.
SLOW_CALLBACK_SECONDS = 0.05


def _public_methods(cls: type) -> list[str]:
    return [n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")]


@pytest.mark.parametrize("cls", REPOSITORY_CLASSES, ids=lambda c: c.__name__)
def test_every_public_repository_method_is_a_coroutine_function(cls: type) -> None:
    methods = _public_methods(cls)
    assert methods
    assert [m for m in methods if not inspect.iscoroutinefunction(getattr(cls, m))] == []


@pytest.mark.parametrize("cls", REPOSITORY_CLASSES, ids=lambda c: c.__name__)
def test_every_repository_offers_the_repository_protocol(cls: type) -> None:
    wanted = {n for n in dir(Repository) if not n.startswith("_")}
    assert wanted <= set(dir(cls))


async def test_repository_calls_never_block_the_event_loop(
    db: Database, org_a: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    debug, threshold = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
    caplog.set_level(logging.WARNING, logger="asyncio")
    # A full garbage collection of this test process's heap can itself pause a
    # callback for tens of milliseconds; what is measured is the repositories' code.
    gc.collect()
    gc.disable()
    try:
        async with db.unit_of_work(org_a) as uow:
            customer = await uow.customers.add(Customer(email="loop@example.com"))
            await uow.customers.get(customer.id)
            await uow.customers.update(customer.id, {"name": "renamed"})
            spec = Specification[Customer](Customer.name == "renamed")
            await uow.customers.list(spec, page=KeysetPage(limit=10))
            await uow.customers.list(spec, page=OffsetPage(limit=10))
            await uow.customers.count(spec)
            await uow.customers.exists(spec)
            product = await uow.products.add(Product(name="Widget"))
            await uow.products.delete(product.id)
            await uow.commit()
    finally:
        gc.enable()
        loop.set_debug(debug)
        loop.slow_callback_duration = threshold
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert slow == []
