"""The tenant middleware: one verified organization per request, bound for that request only.

It is pure ASGI (``__init__(app, ...)``, ``async __call__(scope, receive, send)``)
and never ``BaseHTTPMiddleware``: that one runs the application in another
task, and a ``ContextVar`` set here would not reach it (starlette #1525, #2943).

Security invariants kept here:

* Fail closed: a request reaches the application only with a verified caller,
  a well-formed organization and (unless switched off) a membership of the
  caller in it. Everything else is answered 400/401/403 with a problem document.
* Malformed input never touches the database: headers and tokens are checked
  in memory first; only a verified, well-formed identity is looked up.
* The tenant is bound with a ``ContextVar`` around this request's call alone,
  so it cannot leak into another request, concurrent or later.
"""

from __future__ import annotations

from typing import Any

from tenancy.context import operation, request_context, tenant_context
from tenancy.db.database import Database
from tenancy.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    IsolationViolation,
    RequestRejected,
    TenantForbidden,
)
from tenancy.log import get_logger
from tenancy.web.asgi import (
    DATABASE_STATE_KEY,
    REQUEST_ID_HEADER,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    operation_name,
    problem_body,
    request_id_from,
    send_problem,
)
from tenancy.web.auth_settings import AuthSettings
from tenancy.web.jwks import KeySource
from tenancy.web.membership import MembershipCheck, UnitOfWorkMembershipCheck
from tenancy.web.request_auth import RequestIdentity, TokenVerifier, resolve_identity

logger = get_logger("tenancy.web.middleware")

#: Key under ``scope["state"]`` (Starlette's ``request.state``) holding the identity.
IDENTITY_STATE_KEY = "tenancy_identity"

#: WebSocket close code for a refused handshake (RFC 6455: policy violation).
_WS_POLICY_VIOLATION = 1008


class TenantMiddleware:
    """Resolve, verify and bind the organization of every HTTP and WebSocket request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: AuthSettings,
        membership: MembershipCheck | None = None,
        keys: KeySource | None = None,
    ) -> None:
        """Wrap ``app``; ``keys`` replaces the key source the settings configure.

        Without ``membership`` (and with ``require_membership`` on), each request is
        checked through the application's ``Database``, found in the lifespan state
        or ``app.state`` under ``DATABASE_STATE_KEY``: it may be created in the
        lifespan, after the app and its middleware are built.
        """
        self.app = app
        self._settings = settings
        self._membership = membership
        self._verifier = TokenVerifier(settings, keys) if settings.tenant_source == "jwt" else None
        self._exempt = frozenset(settings.exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; lifespan and other scopes pass through untouched."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        op = operation_name(scope)
        send = _with_request_id(send, request_id)
        with request_context(request_id), operation(op):
            if scope.get("path") in self._exempt:
                await self.app(scope, receive, send)
                return
            try:
                identity = await self._identify(scope)
            except RequestRejected as exc:
                _log_rejection(exc, op, request_id)
                await _refuse(scope, send, exc, request_id, bearer=self._verifier is not None)
                return
            except DatabaseUnavailable as exc:
                logger.error(
                    "membership check failed: %s",
                    exc,
                    extra={"request_id": request_id},
                )
                await _unavailable(scope, send, request_id)
                return
            await self._serve(scope, receive, send, identity, request_id)

    async def _identify(self, scope: Scope) -> RequestIdentity:
        identity = await resolve_identity(scope, self._settings, self._verifier)
        membership = self._membership_check(scope)
        if membership is not None and not await membership.is_member(
            identity.org_id, identity.user_id
        ):
            raise TenantForbidden(
                "the caller is not a member of the requested organization",
                org_id=identity.org_id,
            )
        return identity

    def _membership_check(self, scope: Scope) -> MembershipCheck | None:
        if self._membership is not None or not self._settings.require_membership:
            return self._membership
        try:
            return UnitOfWorkMembershipCheck(scope_database(scope))
        except ConfigurationError as exc:
            # Fail closed: no membership can be checked, so no request is admitted.
            raise DatabaseUnavailable(str(exc)) from exc

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, identity: RequestIdentity, rid: str
    ) -> None:
        # A copy of the scope and of its state: nothing set here outlives the request.
        state: dict[str, Any] = {**scope.get("state", {}), IDENTITY_STATE_KEY: identity}
        scope = {**scope, "state": state}
        with tenant_context(identity.org_id):
            try:
                await self.app(scope, receive, send)
            except IsolationViolation:
                # The application tried to cross a tenant boundary and nothing in it
                # handled the refusal: record who, where and which request.
                logger.warning(
                    "isolation violation (SQLSTATE 42501) escaped the application",
                    extra={"request_id": rid, "user_id": str(identity.user_id)},
                )
                raise


def _with_request_id(send: Send, request_id: str) -> Send:
    header = (REQUEST_ID_HEADER.encode(), request_id.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(key.lower() == header[0] for key, _ in headers):
                headers.append(header)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_id


def _log_rejection(exc: RequestRejected, op: str, request_id: str) -> None:
    logger.warning(
        "request rejected with %s: %s",
        exc.status,
        exc.detail,
        extra={
            "org_id": str(exc.org_id) if exc.org_id is not None else "-",
            "operation": op,
            "request_id": request_id,
            "problem": exc.problem,
            "status": exc.status,
        },
    )


async def _refuse(
    scope: Scope, send: Send, exc: RequestRejected, request_id: str, *, bearer: bool
) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})
        return
    extra: list[tuple[bytes, bytes]] = []
    if exc.status == 401 and bearer:
        extra.append((b"www-authenticate", b"Bearer"))
    if exc.status == 503:
        extra.append((b"retry-after", b"1"))
    body = problem_body(
        status=exc.status,
        problem=exc.problem,
        title=exc.title,
        detail=exc.detail,
        request_id=request_id,
    )
    await send_problem(
        send, status=exc.status, body=body, request_id=request_id, extra_headers=extra
    )


async def _unavailable(scope: Scope, send: Send, request_id: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013})  # try again later
        return
    body = problem_body(
        status=503,
        problem="unavailable",
        title="Service unavailable",
        detail="the organization could not be verified; try again",
        request_id=request_id,
    )
    await send_problem(
        send, status=503, body=body, request_id=request_id, extra_headers=[(b"retry-after", b"1")]
    )


__all__ = ["IDENTITY_STATE_KEY", "RequestIdentity", "TenantMiddleware"]


def scope_database(scope: Scope) -> Database[Any]:
    """Return the application's ``Database`` from the lifespan state or ``app.state``.

    Raises:
        ConfigurationError: the application stored no ``Database`` under ``DATABASE_STATE_KEY``.
    """
    found = scope.get("state", {}).get(DATABASE_STATE_KEY)
    if found is None:
        found = getattr(getattr(scope.get("app"), "state", None), DATABASE_STATE_KEY, None)
    if not isinstance(found, Database):
        raise ConfigurationError(
            f"no Database in the lifespan state or app.state under {DATABASE_STATE_KEY!r}"
        )
    return found
