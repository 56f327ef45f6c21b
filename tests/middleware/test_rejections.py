"""Missing, malformed, forged and foreign tenants are refused with a problem document.

Malformed input is refused before the database is used: each such case also
asserts that no pooled connection was checked out.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest

from repositories import PlatformDatabase
from tenancy import TenancySettings
from tenancy.db.engine import create_engine
from tenancy.web.asgi import Message
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.conftest import Checkouts
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import AUDIENCE, SECRET, bearer, jwt_settings, mint
from tests.middleware.logs import context, warnings_of

pytestmark = pytest.mark.security

Headers = dict[str, str]
HeaderFactory = Callable[[uuid.UUID, uuid.UUID], Headers]


def _tampered(user: uuid.UUID, org: uuid.UUID) -> Headers:
    # A real token of the user whose payload was edited to name another organization.
    header, payload, signature = mint(sub=user, org=org).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org_id"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return bearer(f"{header}.{forged}.{signature}")


def _unsigned(user: uuid.UUID, org: uuid.UUID) -> Headers:
    claims = {"sub": str(user), "org_id": str(org), "aud": AUDIENCE, "exp": 2**31}
    return bearer(jwt.encode(claims, key="", algorithm="none"))


#: Credentials that must be refused with 401, each without a database round trip.
UNAUTHENTICATED: dict[str, HeaderFactory] = {
    "no_authorization_header": lambda user, org: {},
    "basic_scheme": lambda user, org: {"authorization": "Basic dXNlcjpwYXNz"},
    "empty_bearer": lambda user, org: {"authorization": "Bearer "},
    "not_a_jwt": lambda user, org: bearer("not.a.jwt"),
    "forged_signature": lambda user, org: bearer(mint(sub=user, org=org, key="x" * 64)),
    "payload_tampered_to_other_org": _tampered,
    "unsigned_alg_none": _unsigned,
    "expired": lambda user, org: bearer(mint(sub=user, org=org, expires_in=-60)),
    "not_yet_valid": lambda user, org: bearer(mint(sub=user, org=org, nbf=2**31)),
    "wrong_audience": lambda user, org: bearer(mint(sub=user, org=org, aud="other-service")),
    "wrong_issuer": lambda user, org: bearer(mint(sub=user, org=org, iss="https://evil.test")),
    "no_expiry": lambda user, org: bearer(mint(sub=user, org=org, exp=None)),
    "no_audience": lambda user, org: bearer(mint(sub=user, org=org, aud=None)),
    "subject_not_a_user_id": lambda user, org: bearer(mint(sub="admin", org=org)),
    "oversized_token": lambda user, org: bearer(mint(sub=user, org=org, pad="x" * 9000)),
}

#: Verified tokens naming no usable organization: 400, no database round trip.
UNRESOLVED: dict[str, HeaderFactory] = {
    "no_org_claim": lambda user, org: bearer(mint(sub=user, org=None)),
    "org_not_a_uuid": lambda user, org: bearer(mint(sub=user, org="acme")),
    "org_sql_injection": lambda user, org: bearer(mint(sub=user, org="x'; RESET ROLE; --")),
    "org_empty": lambda user, org: bearer(mint(sub=user, org="")),
    "org_not_a_string": lambda user, org: bearer(mint(sub=user, org=None, org_id=12345)),
}


@pytest.mark.parametrize("case", sorted(UNAUTHENTICATED))
async def test_bad_credentials_are_refused_401_without_touching_the_database(
    case: str,
    client: httpx.AsyncClient,
    member: uuid.UUID,
    org_a: uuid.UUID,
    checkouts: Checkouts,
) -> None:
    response = await client.get("/me", headers=UNAUTHENTICATED[case](member, org_a))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert checkouts.count == 0


@pytest.mark.parametrize("case", sorted(UNRESOLVED))
async def test_missing_or_malformed_organization_is_refused_400_without_touching_the_database(
    case: str,
    client: httpx.AsyncClient,
    member: uuid.UUID,
    org_a: uuid.UUID,
    checkouts: Checkouts,
) -> None:
    response = await client.get("/me", headers=UNRESOLVED[case](member, org_a))
    assert response.status_code == 400
    assert checkouts.count == 0


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    token = mint(sub=member, org=org_a)
    headers = [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401


async def test_member_asking_for_another_organization_is_refused_403(
    client: httpx.AsyncClient, member: uuid.UUID, org_b: uuid.UUID
) -> None:
    response = await client.get("/me", headers=bearer(mint(sub=member, org=org_b)))
    assert response.status_code == 403


async def test_validly_signed_token_of_a_stranger_is_refused_403(
    client: httpx.AsyncClient, org_a: uuid.UUID
) -> None:
    response = await client.get("/me", headers=bearer(mint(sub=uuid.uuid4(), org=org_a)))
    assert response.status_code == 403


async def test_token_for_an_organization_that_does_not_exist_is_refused_403(
    client: httpx.AsyncClient, member: uuid.UUID
) -> None:
    response = await client.get("/me", headers=bearer(mint(sub=member, org=uuid.uuid4())))
    assert response.status_code == 403


async def test_refusal_is_an_rfc9457_problem_document(
    client: httpx.AsyncClient, member: uuid.UUID, org_b: uuid.UUID
) -> None:
    headers = {**bearer(mint(sub=member, org=org_b)), "x-request-id": "req-403"}
    response = await client.get("/me", headers=headers)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:tenancy:problem:tenant-forbidden",
        "title": "Not a member of this organization",
        "status": 403,
        "detail": "the caller is not a member of the requested organization",
        "instance": "urn:tenancy:request:req-403",
        "request_id": "req-403",
    }


async def test_refusal_does_not_echo_the_token(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    token = mint(sub=member, org=org_a, key="y" * 64)
    response = await client.get("/me", headers=bearer(token))
    assert token not in response.text
    assert SECRET not in response.text


async def test_refusal_is_logged_at_warning_with_tenant_operation_and_request_id(
    client: httpx.AsyncClient,
    member: uuid.UUID,
    org_b: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {**bearer(mint(sub=member, org=org_b)), "x-request-id": "req-log-1"}
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        await client.get("/orders/7", headers=headers)
    [record] = [r for r in caplog.records if r.name == "tenancy.web.middleware"]
    assert record.levelno == logging.WARNING
    assert context(record) == {
        "org_id": str(org_b),
        "operation": "GET /orders/7",
        "request_id": "req-log-1",
        "status": 403,
    }


async def test_forged_token_is_logged_with_the_organization_it_claimed(
    client: httpx.AsyncClient,
    member: uuid.UUID,
    org_b: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        await client.get("/me", headers=bearer(mint(sub=member, org=org_b, key="z" * 64)))
    [record] = warnings_of(caplog.records, "tenancy.web.middleware")
    assert (record["org_id"], record["status"]) == (str(org_b), 401)


async def test_unprintable_path_cannot_forge_log_lines(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        await client.get("/x%0aINFO%20fake%20entry")
    [record] = warnings_of(caplog.records, "tenancy.web.middleware")
    assert "\n" not in record["operation"]


async def test_unreachable_database_answers_503_not_a_pass(
    settings: TenancySettings, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    dead = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://tenancy_app:x@127.0.0.1:1/none"}
    )
    database = PlatformDatabase(create_engine(dead), dead)
    app = TenantMiddleware(
        echo_app, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(database)
    )
    try:
        async with client_for(app) as http:
            response = await http.get("/me", headers=bearer(mint(sub=member, org=org_a)))
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_websocket_handshake_without_credentials_is_closed_as_policy_violation(
    middleware: TenantMiddleware,
) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
