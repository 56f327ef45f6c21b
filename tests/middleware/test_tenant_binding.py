"""A verified member's request runs with its organization bound, for that request only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tenancy import Database, current_tenant
from tenancy.web.asgi import DATABASE_STATE_KEY, Message, Receive, Scope, Send
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import bearer, create_member, create_org, jwt_settings, mint


async def test_member_request_runs_with_its_organization_bound(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await client.get("/me", headers=bearer(mint(sub=member, org=org_a)))
    assert response.status_code == 200
    assert response.json()["tenant"] == str(org_a)


async def test_application_sees_the_verified_user(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await client.get("/me", headers=bearer(mint(sub=member, org=org_a)))
    assert response.json()["user"] == str(member)


async def test_tenant_is_unbound_once_the_request_is_done(
    middleware: TenantMiddleware, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    async with client_for(middleware) as http:
        await http.get("/me", headers=bearer(mint(sub=member, org=org_a)))
    assert current_tenant() is None


async def test_caller_request_id_is_kept_and_echoed(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    headers = {**bearer(mint(sub=member, org=org_a)), "x-request-id": "req-42.a"}
    response = await client.get("/me", headers=headers)
    assert response.json()["request_id"] == "req-42.a"
    assert response.headers["x-request-id"] == "req-42.a"


async def test_unsafe_request_id_is_replaced_by_a_generated_one(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    headers = {**bearer(mint(sub=member, org=org_a)), "x-request-id": "evil id\twith spaces"}
    response = await client.get("/me", headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != "evil id\twith spaces"
    assert response.json()["request_id"] == generated


async def test_exempt_path_is_served_without_credentials_or_tenant(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["tenant"] is None


async def test_concurrent_requests_each_see_only_their_own_organization(
    db: Database, client: httpx.AsyncClient
) -> None:
    orgs = [await create_org(db) for _ in range(8)]
    tokens = {org: mint(sub=await create_member(db, org), org=org) for org in orgs}
    requests = [org for org in orgs for _ in range(10)]
    responses = await asyncio.gather(
        *(client.get("/me", headers=bearer(tokens[org])) for org in requests)
    )
    assert [r.json()["tenant"] for r in responses] == [str(org) for org in requests]


async def test_lifespan_messages_pass_through_untouched(db: Database) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer lifespan messages")

    wrapped = TenantMiddleware(
        app, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(db)
    )
    await wrapped({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


async def test_membership_check_can_be_switched_off_for_trusted_tokens(
    db: Database, org_a: uuid.UUID
) -> None:
    settings = jwt_settings(require_membership=False)
    async with client_for(TenantMiddleware(echo_app, settings=settings)) as http:
        response = await http.get("/me", headers=bearer(mint(sub=uuid.uuid4(), org=org_a)))
    assert response.json()["tenant"] == str(org_a)


def _with_lifespan_state(app: Any, state: dict[str, Any]) -> Any:
    """What an ASGI server does with the state a lifespan yielded: a copy per request."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return served


async def test_without_a_membership_check_the_database_of_the_lifespan_state_checks_members(
    db: Database, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    # Built before any Database exists, as an app is before its lifespan runs.
    middleware = TenantMiddleware(echo_app, settings=jwt_settings())
    app = _with_lifespan_state(middleware, {DATABASE_STATE_KEY: db})
    async with client_for(app) as http:
        admitted = await http.get("/me", headers=bearer(mint(sub=member, org=org_a)))
        stranger = await http.get("/me", headers=bearer(mint(sub=uuid.uuid4(), org=org_a)))

    assert admitted.status_code == 200
    assert stranger.status_code == 403


async def test_without_a_membership_check_or_a_database_in_the_state_no_request_is_admitted(
    member: uuid.UUID, org_a: uuid.UUID
) -> None:
    async with client_for(TenantMiddleware(echo_app, settings=jwt_settings())) as http:
        response = await http.get("/me", headers=bearer(mint(sub=member, org=org_a)))

    assert response.status_code == 503
