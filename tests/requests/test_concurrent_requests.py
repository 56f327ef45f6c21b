"""Hundreds of concurrent requests for different organizations: each sees only its own data."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest

from tests.middleware.identities import bearer, mint
from tests.requests.conftest import Tenant

pytestmark = pytest.mark.security

REQUESTS = 400


def assert_only_own(tenant: Tenant, rows: list[dict[str, Any]]) -> None:
    """Every row belongs to ``tenant`` and the rows are exactly its customers."""
    assert {row["org_id"] for row in rows} <= {str(tenant.org_id)}
    assert {uuid.UUID(row["id"]) for row in rows} == tenant.customers


async def test_concurrent_list_requests_each_return_exactly_their_own_customers(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    callers = [random.choice(tenants) for _ in range(REQUESTS)]
    responses = await asyncio.gather(
        *(client.get("/customers", headers=bearer(t.token)) for t in callers)
    )
    for tenant, response in zip(callers, responses, strict=True):
        assert response.status_code == 200
        assert_only_own(tenant, response.json())


async def test_concurrent_requests_see_the_verified_tenant_bound(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    callers = [random.choice(tenants) for _ in range(REQUESTS)]
    responses = await asyncio.gather(
        *(client.get("/whoami", headers=bearer(t.token)) for t in callers)
    )
    for tenant, response in zip(callers, responses, strict=True):
        assert response.json()["bound"] == response.json()["org_id"] == str(tenant.org_id)


async def test_concurrent_writes_and_reads_stay_in_their_tenant(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    writers = [random.choice(tenants) for _ in range(REQUESTS // 2)]
    created = await asyncio.gather(
        *(
            client.post(
                "/customers", json={"email": f"{uuid.uuid4().hex}@x.test"}, headers=bearer(t.token)
            )
            for t in writers
        )
    )
    for tenant, response in zip(writers, created, strict=True):
        assert response.status_code == 201
        assert response.json()["org_id"] == str(tenant.org_id)
        tenant.customers.add(uuid.UUID(response.json()["id"]))
    listed = await asyncio.gather(
        *(client.get("/customers", headers=bearer(t.token)) for t in tenants)
    )
    for tenant, response in zip(tenants, listed, strict=True):
        assert_only_own(tenant, response.json())


async def test_attacks_interleaved_with_real_traffic_are_refused_and_leak_nothing(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    def attack(attacker: Tenant, victim: Tenant) -> tuple[str, dict[str, str], int]:
        kind = random.choice(["forged", "expired", "audience", "foreign", "tampered_sub"])
        tokens = {
            "forged": mint(sub=attacker.user_id, org=victim.org_id, key="f" * 64),
            "expired": mint(sub=attacker.user_id, org=attacker.org_id, expires_in=-5),
            "audience": mint(sub=attacker.user_id, org=attacker.org_id, aud="billing"),
            "foreign": mint(sub=attacker.user_id, org=victim.org_id),
            "tampered_sub": mint(sub=victim.user_id, org=victim.org_id, key="g" * 64),
        }
        return kind, bearer(tokens[kind]), 403 if kind == "foreign" else 401

    calls: list[tuple[Tenant | None, dict[str, str], int]] = []
    for _ in range(REQUESTS):
        caller, victim = random.sample(tenants, 2)
        if random.random() < 0.3:
            _, headers, status = attack(caller, victim)
            calls.append((None, headers, status))
        else:
            calls.append((caller, bearer(caller.token), 200))
    responses = await asyncio.gather(*(client.get("/customers", headers=h) for _, h, _ in calls))
    every_customer = {str(c) for t in tenants for c in t.customers}
    for (legit, _, status), response in zip(calls, responses, strict=True):
        assert response.status_code == status
        if legit is None:
            assert response.headers["content-type"] == "application/problem+json"
            assert not any(customer in response.text for customer in every_customer)
        else:
            assert_only_own(legit, response.json())


async def test_another_tenants_customer_id_answers_404(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    me, victim = tenants[0], tenants[1]
    theirs = next(iter(victim.customers))
    response = await client.get(f"/customers/{theirs}", headers=bearer(me.token))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
