"""Fixtures of the middleware suite: an echo application behind the tenant middleware."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tenancy import Database
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import create_member, jwt_settings


@pytest.fixture
def middleware(db: Database) -> TenantMiddleware:
    """The echo application behind the middleware, JWT mode, memberships checked in Postgres."""
    return TenantMiddleware(
        echo_app, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(db)
    )


@pytest.fixture
async def client(middleware: TenantMiddleware) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``middleware``."""
    async with client_for(middleware) as http:
        yield http


@pytest.fixture
async def member(db: Database, org_a: uuid.UUID) -> uuid.UUID:
    """A user who is a member of ``org_a`` (and of nothing else)."""
    return await create_member(db, org_a)


@dataclass
class Checkouts:
    """How many connections were taken from the pool."""

    count: int = 0


@pytest.fixture
def checkouts(db: Database) -> Iterator[Checkouts]:
    """Count pool checkouts of ``db`` while the test runs."""
    seen = Checkouts()

    def on_checkout(*args: Any) -> None:
        seen.count += 1

    pool = db.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    yield seen
    event.remove(pool, "checkout", on_checkout)
