"""Tokens verify against an identity provider's key set (JWKS), fetched from a real endpoint.

The key source gets a hand-driven clock, so cache expiry and the refresh
interval are reached by moving time forward, not by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tenancy import Database
from tenancy.web.jwks import JwksKeySource
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import bearer, jwt_settings, mint
from tests.middleware.jwks_server import JwksServer, jwks_server
from tests.middleware.test_asymmetric_keys import b64

CACHE_SECONDS = 300.0
MIN_REFRESH_SECONDS = 30.0
TIMEOUT_SECONDS = 0.5


class Clock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds


@pytest.fixture(scope="module")
def signer() -> rsa.RSAPrivateKey:
    """The identity provider's current signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def successor() -> rsa.RSAPrivateKey:
    """The key the provider rotates to."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> Clock:
    """The key source's clock."""
    return Clock()


@pytest.fixture
async def idp(signer: rsa.RSAPrivateKey) -> AsyncIterator[JwksServer]:
    """A JWKS endpoint publishing ``signer`` as kid ``k1``."""
    async with jwks_server() as server:
        server.publish(signer, "k1")
        yield server


def client_of(db: Database, url: str, clock: Clock) -> httpx.AsyncClient:
    """Return a client for the echo app behind a middleware using the key set at ``url``."""
    settings = jwt_settings(
        jwt_key=None,
        jwks_url=url,
        jwt_algorithms=["RS256"],
        jwks_cache_seconds=CACHE_SECONDS,
        jwks_min_refresh_seconds=MIN_REFRESH_SECONDS,
        jwks_timeout_seconds=TIMEOUT_SECONDS,
    )
    keys = JwksKeySource.from_settings(settings, clock=clock)
    membership = UnitOfWorkMembershipCheck(db)
    return client_for(
        TenantMiddleware(echo_app, settings=settings, membership=membership, keys=keys)
    )


@pytest.fixture
async def client(db: Database, idp: JwksServer, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the echo app behind a middleware verifying with ``idp``'s key set."""
    async with client_of(db, idp.url, clock) as http:
        yield http


@pytest.fixture
def caller(member: uuid.UUID, org_a: uuid.UUID) -> dict[str, Any]:
    """Who the tokens are for: a member of ``org_a``."""
    return {"sub": member, "org": org_a}


async def status(http: httpx.AsyncClient, token: str) -> int:
    """Return the status a request with ``token`` is answered with."""
    return (await http.get("/me", headers=bearer(token))).status_code


async def test_token_signed_by_a_published_key_is_accepted(
    client: httpx.AsyncClient, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    token = mint(key=signer, algorithm="RS256", kid="k1", **caller)
    response = await client.get("/me", headers=bearer(token))
    assert response.json()["tenant"] == str(caller["org"])


async def test_key_set_is_fetched_once_and_cached(
    client: httpx.AsyncClient, idp: JwksServer, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    token = mint(key=signer, algorithm="RS256", kid="k1", **caller)
    assert [await status(client, token) for _ in range(3)] == [200, 200, 200]
    assert idp.fetches == 1


async def test_rotated_key_is_accepted_after_one_refresh(
    client: httpx.AsyncClient,
    idp: JwksServer,
    clock: Clock,
    signer: rsa.RSAPrivateKey,
    successor: rsa.RSAPrivateKey,
    caller: dict[str, Any],
) -> None:
    assert await status(client, mint(key=signer, algorithm="RS256", kid="k1", **caller)) == 200
    idp.publish(successor, "k2")
    clock.advance(MIN_REFRESH_SECONDS)
    rotated = mint(key=successor, algorithm="RS256", kid="k2", **caller)
    assert [await status(client, rotated) for _ in range(2)] == [200, 200]
    assert idp.fetches == 2


@pytest.mark.security
async def test_withdrawn_key_is_refused_once_the_cache_expires(
    client: httpx.AsyncClient,
    idp: JwksServer,
    clock: Clock,
    signer: rsa.RSAPrivateKey,
    successor: rsa.RSAPrivateKey,
    caller: dict[str, Any],
) -> None:
    token = mint(key=signer, algorithm="RS256", kid="k1", **caller)
    assert await status(client, token) == 200
    idp.publish(successor, "k2")
    idp.withdraw("k1")
    clock.advance(CACHE_SECONDS)
    assert await status(client, token) == 401
    assert idp.fetches == 2


@pytest.mark.security
async def test_random_kids_cause_at_most_one_fetch_per_refresh_interval(
    client: httpx.AsyncClient,
    idp: JwksServer,
    clock: Clock,
    signer: rsa.RSAPrivateKey,
    caller: dict[str, Any],
) -> None:
    def forged() -> str:
        return mint(key=signer, algorithm="RS256", kid=uuid.uuid4().hex, **caller)

    assert await status(client, forged()) == 401  # the first use fetches the set
    assert {await status(client, forged()) for _ in range(10)} == {401}
    clock.advance(MIN_REFRESH_SECONDS)
    statuses = await asyncio.gather(*(status(client, forged()) for _ in range(10)))
    assert set(statuses) == {401}
    assert idp.fetches == 2


@pytest.mark.security
async def test_unreachable_endpoint_refuses_the_request(
    db: Database, clock: Clock, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client_of(db, f"http://127.0.0.1:{port}/jwks.json", clock) as http:
        token = mint(key=signer, algorithm="RS256", kid="k1", **caller)
        response = await http.get("/me", headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "signing keys are unavailable" in response.json()["detail"]


@pytest.mark.security
async def test_hung_endpoint_is_abandoned_after_the_timeout(
    client: httpx.AsyncClient, idp: JwksServer, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    idp.responsive.clear()
    started = time.monotonic()
    assert await status(client, mint(key=signer, algorithm="RS256", kid="k1", **caller)) == 503
    assert time.monotonic() - started < TIMEOUT_SECONDS + 1.0


async def test_endpoint_that_failed_is_not_asked_again_within_the_refresh_interval(
    client: httpx.AsyncClient, idp: JwksServer, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    idp.responsive.clear()
    token = mint(key=signer, algorithm="RS256", kid="k1", **caller)
    assert [await status(client, token) for _ in range(3)] == [503, 503, 503]
    assert idp.fetches == 1


@pytest.mark.security
async def test_hmac_token_signed_with_the_published_public_key_is_refused(
    client: httpx.AsyncClient, idp: JwksServer, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    # Algorithm confusion: the public key (anyone can derive its PEM) used as an HMAC secret.
    pem = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    claims = mint(key="k" * 64, **caller).split(".")[1].encode()
    signature = b64(hmac.new(pem, header + b"." + claims, hashlib.sha256).digest())
    assert await status(client, b".".join((header, claims, signature)).decode()) == 401
    assert idp.fetches == 0  # refused on its algorithm, before any key is looked up


@pytest.mark.security
async def test_unsigned_token_is_refused(client: httpx.AsyncClient, caller: dict[str, Any]) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    claims = mint(key="k" * 64, **caller).split(".")[1].encode()
    assert await status(client, (header + b"." + claims + b".").decode()) == 401


async def test_expired_token_is_refused(
    client: httpx.AsyncClient, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    token = mint(key=signer, algorithm="RS256", kid="k1", expires_in=-60, **caller)
    response = await client.get("/me", headers=bearer(token))
    assert (response.status_code, response.json()["detail"]) == (401, "token has expired")


@pytest.mark.security
async def test_token_without_kid_is_refused_when_several_keys_are_published(
    client: httpx.AsyncClient,
    idp: JwksServer,
    signer: rsa.RSAPrivateKey,
    successor: rsa.RSAPrivateKey,
    caller: dict[str, Any],
) -> None:
    idp.publish(successor, "k2")
    assert await status(client, mint(key=signer, algorithm="RS256", **caller)) == 401


async def test_token_without_kid_is_accepted_when_one_key_is_published(
    client: httpx.AsyncClient, signer: rsa.RSAPrivateKey, caller: dict[str, Any]
) -> None:
    assert await status(client, mint(key=signer, algorithm="RS256", **caller)) == 200


@pytest.mark.security
async def test_published_private_key_is_not_trusted(
    client: httpx.AsyncClient,
    idp: JwksServer,
    successor: rsa.RSAPrivateKey,
    caller: dict[str, Any],
) -> None:
    # A provider that leaks a private key in its set has leaked it to everyone.
    leaked: dict[str, Any] = RSAAlgorithm.to_jwk(successor, as_dict=True)
    idp.keys.append({**leaked, "kid": "leaked", "use": "sig", "alg": "RS256"})
    assert (
        await status(client, mint(key=successor, algorithm="RS256", kid="leaked", **caller)) == 401
    )


async def test_static_key_mode_still_accepts_its_tokens(
    db: Database, caller: dict[str, Any]
) -> None:
    app = TenantMiddleware(
        echo_app, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(db)
    )
    async with client_for(app) as http:
        assert await status(http, mint(**caller)) == 200
