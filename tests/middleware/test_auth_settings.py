"""Authentication settings refuse configurations that would let a forged token through."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tenancy.web.auth_settings import AuthSettings

STRONG = SecretStr("s" * 48)


def jwt(**values: Any) -> AuthSettings:
    """Return JWT-mode settings with ``values`` on top of a valid HS256 configuration."""
    return AuthSettings(
        **{"jwt_key": STRONG, "jwt_algorithms": ["HS256"], "jwt_audience": "api", **values}
    )


def test_valid_hmac_configuration_is_accepted() -> None:
    assert jwt().family == "hmac"


@pytest.mark.security
def test_algorithm_none_is_refused() -> None:
    with pytest.raises(ValidationError, match="unsupported"):
        jwt(jwt_algorithms=["none"])


@pytest.mark.security
def test_mixing_hmac_and_rsa_algorithms_is_refused() -> None:
    with pytest.raises(ValidationError, match="one key type"):
        jwt(jwt_algorithms=["RS256", "HS256"])


@pytest.mark.security
def test_short_hmac_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        jwt(jwt_key=SecretStr("short"))


def test_jwt_mode_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="needs jwt_key"):
        jwt(jwt_key=None)


def test_jwt_mode_needs_an_audience() -> None:
    with pytest.raises(ValidationError, match="needs jwt_audience"):
        jwt(jwt_audience=None)


def test_empty_algorithm_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        jwt(jwt_algorithms=[])


def test_gateway_mode_needs_no_key() -> None:
    settings = AuthSettings(tenant_source="gateway-header", gateway_tenant_header="X-Org-Id")
    assert settings.gateway_tenant_header == "x-org-id"


def test_settings_are_read_from_tenancy_auth_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANCY_AUTH_JWT_KEY", "e" * 40)
    monkeypatch.setenv("TENANCY_AUTH_JWT_ALGORITHMS", '["HS512"]')
    monkeypatch.setenv("TENANCY_AUTH_JWT_AUDIENCE", "payments")
    settings = AuthSettings()
    assert (settings.jwt_algorithms, settings.jwt_audience) == (["HS512"], "payments")


def jwks(**values: Any) -> AuthSettings:
    """Return JWT-mode settings verifying RS256 tokens with a key set."""
    return AuthSettings(
        **{
            "jwks_url": "https://idp.example/.well-known/jwks.json",
            "jwt_algorithms": ["RS256"],
            "jwt_audience": "api",
            **values,
        }
    )


def test_key_set_configuration_is_accepted() -> None:
    assert jwks().jwks_url == "https://idp.example/.well-known/jwks.json"


def test_key_and_key_set_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="exclusive"):
        jwks(jwt_key=SecretStr("-----BEGIN PUBLIC KEY-----"))


@pytest.mark.security
def test_key_set_over_plain_http_to_another_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be https"):
        jwks(jwks_url="http://idp.example/jwks.json")


def test_key_set_over_plain_http_on_loopback_is_accepted() -> None:
    assert jwks(jwks_url="http://127.0.0.1:8080/jwks.json").jwks_url is not None


@pytest.mark.security
def test_key_set_with_hmac_algorithms_is_refused() -> None:
    with pytest.raises(ValidationError, match="public keys"):
        jwks(jwt_algorithms=["HS256"])


def test_key_set_cache_shorter_than_the_refresh_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least jwks_min_refresh_seconds"):
        jwks(jwks_cache_seconds=10, jwks_min_refresh_seconds=30)


def test_list_settings_accept_comma_separated_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANCY_AUTH_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("TENANCY_AUTH_JWT_ALGORITHMS", "RS256, PS256")
    monkeypatch.setenv("TENANCY_AUTH_JWT_AUDIENCE", "payments")
    monkeypatch.setenv("TENANCY_AUTH_EXEMPT_PATHS", "/health,/ready")
    settings = AuthSettings()
    assert (settings.jwt_algorithms, settings.exempt_paths) == (
        ["RS256", "PS256"],
        ["/health", "/ready"],
    )
