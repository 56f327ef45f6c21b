"""Authentication settings refuse configurations that would let a forged token through."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tenancy.auth_settings import AuthSettings

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
