"""Where token signing keys come from: one static key, or an identity provider's key set (JWKS).

``JwksKeySource`` serves the keys an Auth0, Keycloak or Cognito style endpoint
publishes. It fetches the set on first use, trusts it for
``jwks_cache_seconds``, and fetches again early when a token names a ``kid`` it
does not know (the provider rotated its keys), so rotation needs no restart.

Security invariants kept here:

* Fail closed: once the cached set has expired and a fresh one cannot be
  fetched, no token verifies; an old set is never trusted past its time.
* Bounded: a fetch ends within ``jwks_timeout_seconds``; one fetch runs at a
  time, and at most one starts per ``jwks_min_refresh_seconds``, whatever kids
  callers make up. A refused fetch answers at once instead of queueing.
* Only public signing keys of the configured family are kept (no HMAC secret,
  no private key, no ``use: enc``), and a key that pins its ``alg`` verifies
  that algorithm only. With several keys, a token must name its ``kid``.

The fetch uses the standard library's ``urllib`` in a worker thread, so the
event loop never waits on the network and no HTTP client is a dependency.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Protocol

from tenancy.extras import missing_extra

try:
    import jwt
    from jwt.api_jws import PyJWS
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("web", exc) from exc

from tenancy.errors import KeySourceUnavailable, Unauthenticated
from tenancy.log import get_logger
from tenancy.web.auth_settings import ALGORITHM_FAMILIES, AuthSettings, check_jwks_url

logger = get_logger("tenancy.web.jwks")

#: JWK key types (``kty``) by the algorithm family of ``ALGORITHM_FAMILIES``.
_KTY_FAMILY = {"RSA": "rsa", "EC": "ec", "OKP": "okp", "oct": "hmac"}

#: A key set is a few kilobytes; anything far larger is not one.
_MAX_JWKS_BYTES = 1 << 20

_UNAVAILABLE = "the issuer's signing keys are unavailable; try again later"


class KeySource(Protocol):
    """Return the key that verifies a token, from its header's ``kid`` and ``alg``."""

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """Return the verification key for a token signed with ``algorithm``.

        Raises:
            Unauthenticated: no trusted key fits the token, or none can be had now.
        """
        ...


class StaticKeySource:
    """One configured key (``jwt_key``): an HMAC secret or a PEM public key."""

    def __init__(self, settings: AuthSettings) -> None:
        if settings.jwt_key is None:
            raise ValueError("a static key source needs jwt_key")
        secret = settings.jwt_key.get_secret_value()
        # Parse an asymmetric public key once, not on every request.
        self._key: Any = (
            secret
            if settings.family == "hmac"
            else PyJWS().get_algorithm_by_name(settings.jwt_algorithms[0]).prepare_key(secret)
        )

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """Return the one key, whatever the token's ``kid``."""
        return self._key


@dataclass(frozen=True)
class _Jwk:
    kid: str | None
    algorithm: str | None  # the JWK's own ``alg``, when it pins one
    key: Any


class JwksKeySource:
    """The signing keys an identity provider publishes at a JWKS URL, cached and refreshed."""

    def __init__(
        self,
        url: str,
        *,
        algorithms: list[str],
        cache_seconds: float,
        timeout_seconds: float,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve keys from ``url`` for tokens signed with one of ``algorithms``.

        Raises:
            ValueError: ``url`` is not https (or http on loopback), or the
                algorithms are not one asymmetric family.
        """
        self._url = check_jwks_url(url)
        families = {f for f, members in ALGORITHM_FAMILIES.items() if set(algorithms) & members}
        if len(families) != 1 or "hmac" in families:
            raise ValueError("a key set verifies one asymmetric algorithm family")
        self._family = families.pop()
        self._algorithms = frozenset(algorithms)
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: tuple[_Jwk, ...] = ()
        self._expires_at = float("-inf")
        self._last_fetch: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> JwksKeySource:
        """Return the source ``settings.jwks_url`` and the ``jwks_*`` settings describe."""
        if settings.jwks_url is None:
            raise ValueError("a JWKS key source needs jwks_url")
        return cls(
            settings.jwks_url,
            algorithms=settings.jwt_algorithms,
            cache_seconds=settings.jwks_cache_seconds,
            timeout_seconds=settings.jwks_timeout_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            clock=clock,
        )

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """Return the published key that verifies a token with ``kid`` and ``algorithm``.

        Raises:
            Unauthenticated: the key is not published (after one refresh, if
                allowed), the token names no kid among several keys, or the set
                has expired and cannot be fetched.
        """
        if self._clock() >= self._expires_at:
            await self._refresh()
        elif kid is not None and all(key.kid != kid for key in self._keys):
            await self._refresh()  # perhaps rotated; rate-limited, so a made-up kid costs little
        if kid is None and len(self._keys) > 1:
            raise Unauthenticated("token names no key (kid) and the issuer publishes several")
        for key in self._keys:
            if (kid is None or key.kid == kid) and key.algorithm in (None, algorithm):
                return key.key
        raise Unauthenticated("token key is not among the issuer's signing keys")

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            fresh = now < self._expires_at
            if self._last_fetch is not None and now - self._last_fetch < self._min_refresh:
                # Another request just fetched, or one fetch per interval is all we allow.
                if fresh:
                    return
                raise KeySourceUnavailable(_UNAVAILABLE)
            self._last_fetch = now
            try:
                async with asyncio.timeout(self._timeout):
                    body = await asyncio.to_thread(_fetch, self._url, self._timeout)
                keys = _parse(body, self._family, self._algorithms)
            except (OSError, HTTPException, ValueError) as exc:
                # OSError covers URLError, HTTPError and TimeoutError; ValueError bad JSON.
                logger.error("JWKS fetch from %s failed: %s", self._url, type(exc).__name__)
                if fresh:
                    return  # the cached set is still within its time
                raise KeySourceUnavailable(_UNAVAILABLE) from None
            if not keys:
                logger.warning("JWKS at %s holds no usable signing key", self._url)
            self._keys = keys
            self._expires_at = self._clock() + self._cache_seconds


def key_source_for(settings: AuthSettings) -> KeySource:
    """Return the key source ``settings`` configure: the JWKS URL, or the static key."""
    if settings.jwks_url is not None:
        return JwksKeySource.from_settings(settings)
    return StaticKeySource(settings)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to plain http or another host; the URL was checked, its target not.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fetch(url: str, timeout: float) -> bytes:
    # Runs in a worker thread. The socket timeout ends the thread's wait too, so
    # an abandoned fetch does not hold a thread for long.
    opener = urllib.request.build_opener(_NoRedirect)
    # The scheme was checked by check_jwks_url (https, or http on loopback).
    request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310
    with opener.open(request, timeout=timeout) as response:
        body: bytes = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("key set is larger than 1 MiB")
    return body


def _parse(body: bytes, family: str, algorithms: frozenset[str]) -> tuple[_Jwk, ...]:
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: list[_Jwk] = []
    for entry in document["keys"]:
        if not _usable(entry, family, algorithms):
            continue
        try:
            parsed = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # malformed key material; the others still serve
        keys.append(_Jwk(entry.get("kid"), entry.get("alg"), parsed.key))
    return tuple(keys)


def _usable(entry: object, family: str, algorithms: frozenset[str]) -> bool:
    if not isinstance(entry, dict):
        return False
    kid, alg = entry.get("kid"), entry.get("alg")
    return (
        _KTY_FAMILY.get(entry.get("kty", "")) == family
        and entry.get("use", "sig") == "sig"
        and "d" not in entry  # private key material: never verify with a leaked key
        and (kid is None or isinstance(kid, str))
        and (alg is None or alg in algorithms)
    )


__all__ = ["JwksKeySource", "KeySource", "StaticKeySource", "key_source_for"]
