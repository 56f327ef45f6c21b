"""A bound tenant does not escape its block: async generators and background tasks.

``db.tenant()`` is a ``ContextVar`` binding. An async generator runs in its
caller's context, so one that yields inside ``db.tenant(B)`` lends B to the
caller; leaving the block after the caller bound its own tenant, or from
another context (the event loop's finaliser), would restore the wrong tenant.
Both raise ``ConfigurationError`` instead. A task copies the context it is
created in: ``untenanted_context()`` starts one without the request's tenant.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator

import pytest

from tenancy import (
    ConfigurationError,
    Database,
    current_tenant,
    tenant_context,
    untenanted_context,
)

pytestmark = pytest.mark.security


async def _lending(db: Database, org_id: uuid.UUID) -> AsyncIterator[uuid.UUID | None]:
    async with db.tenant(org_id):
        yield current_tenant()


async def test_generator_left_after_the_caller_bound_a_tenant_raises(db: Database) -> None:
    async def scenario() -> None:
        generator = _lending(db, uuid.uuid4())
        await anext(generator)
        with pytest.raises(ConfigurationError), tenant_context(uuid.uuid4()):
            await anext(generator, None)

    # In a task of its own: the bindings the scenario leaves stay in its context.
    await asyncio.create_task(scenario())


async def test_generator_left_in_another_context_raises(db: Database) -> None:
    async def scenario() -> None:
        generator = _lending(db, uuid.uuid4())
        await anext(generator)
        with pytest.raises(ConfigurationError):
            await asyncio.create_task(generator.aclose(), context=contextvars.copy_context())

    await asyncio.create_task(scenario())


async def test_block_left_in_order_restores_the_outer_tenant() -> None:
    outer, inner = uuid.uuid4(), uuid.uuid4()
    with tenant_context(outer):
        with tenant_context(inner):
            assert current_tenant() == inner
        assert current_tenant() == outer
    assert current_tenant() is None


async def test_task_started_in_untenanted_context_sees_no_tenant() -> None:
    seen: list[uuid.UUID | None] = []

    async def background() -> None:
        seen.append(current_tenant())

    with tenant_context(uuid.uuid4()):
        task = asyncio.create_task(background(), context=untenanted_context())
    await task

    assert seen == [None]


async def test_task_started_in_a_tenant_block_keeps_that_tenant() -> None:
    # The hazard the guidance is about: the copied context keeps the request's tenant.
    org_id = uuid.uuid4()
    seen: list[uuid.UUID | None] = []

    async def background() -> None:
        seen.append(current_tenant())

    with tenant_context(org_id):
        task = asyncio.create_task(background())
    await task

    assert seen == [org_id]
