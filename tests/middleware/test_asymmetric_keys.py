"""RS256 tokens verify against a public key; HMAC tokens forged with that key do not."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from tenancy import Database
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import bearer, jwt_settings, mint


def b64(raw: bytes) -> bytes:
    """Encode ``raw`` as unpadded base64url, as JWS does."""
    return urlsafe_b64encode(raw).rstrip(b"=")


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    """A throwaway RSA key of the token issuer."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The issuer's public key in PEM, as an operator would configure it."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
async def rsa_client(db: Database, public_pem: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the echo app behind a middleware accepting RS256 tokens only."""
    settings = jwt_settings(jwt_key=SecretStr(public_pem), jwt_algorithms=["RS256"])
    app = TenantMiddleware(echo_app, settings=settings, membership=UnitOfWorkMembershipCheck(db))
    async with client_for(app) as http:
        yield http


async def test_rs256_token_of_a_member_is_accepted(
    rsa_client: httpx.AsyncClient,
    private_key: rsa.RSAPrivateKey,
    member: uuid.UUID,
    org_a: uuid.UUID,
) -> None:
    token = mint(sub=member, org=org_a, key=private_key, algorithm="RS256")
    response = await rsa_client.get("/me", headers=bearer(token))
    assert response.json()["tenant"] == str(org_a)


@pytest.mark.security
async def test_hmac_token_signed_with_the_public_key_is_refused(
    rsa_client: httpx.AsyncClient, public_pem: str, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    # The classic algorithm-confusion forgery: the public key used as an HMAC secret.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    legit = mint(sub=member, org=org_a, key="k" * 64).split(".")[1].encode()
    signature = b64(hmac.new(public_pem.encode(), header + b"." + legit, hashlib.sha256).digest())
    forged = b".".join((header, legit, signature)).decode()
    response = await rsa_client.get("/me", headers=bearer(forged))
    assert response.status_code == 401


@pytest.mark.security
async def test_rs256_token_of_another_issuer_key_is_refused(
    rsa_client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = mint(sub=member, org=org_a, key=stranger, algorithm="RS256")
    response = await rsa_client.get("/me", headers=bearer(token))
    assert response.status_code == 401
