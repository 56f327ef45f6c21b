"""FastAPI glue: a unit of work for the request's tenant, and errors as problem documents.

The only module that imports FastAPI. The application installs
``TenantMiddleware`` (which verifies and binds the tenant), stores its
``Database`` under ``DATABASE_STATE_KEY`` in the lifespan state or in
``app.state``, calls ``install_problem_handlers(app)``, and declares::

    @app.get("/customers")
    async def customers(uow: TenantUnitOfWork) -> list[CustomerOut]: ...

The unit of work rolls back unless the endpoint calls ``await uow.commit()``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from tenancy.extras import missing_extra

try:
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import Response
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("web", exc) from exc

from tenancy.context import current_request_id, current_tenant
from tenancy.db.database import Database
from tenancy.db.unit_of_work import UnitOfWork
from tenancy.errors import (
    Conflict,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    InvalidTenant,
    IsolationViolation,
    NotFound,
    RequestRejected,
    RetryableError,
    TenancyError,
    TenantContextRequired,
)
from tenancy.log import get_logger
from tenancy.web.asgi import (
    DATABASE_STATE_KEY,
    PROBLEM_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    problem_body,
)
from tenancy.web.middleware import IDENTITY_STATE_KEY, scope_database
from tenancy.web.request_auth import RequestIdentity

logger = get_logger("tenancy.web.fastapi")


#: Error class -> (status, problem slug, title, log level). First match wins, so
#: subclasses come before their bases.
_PROBLEMS: tuple[tuple[type[TenancyError], int, str, str, int], ...] = (
    (
        IsolationViolation,
        403,
        "isolation-violation",
        "Refused by tenant isolation",
        # The refusal itself is logged at WARNING where it is translated (tenancy.log).
        logging.INFO,
    ),
    (NotFound, 404, "not-found", "Not found", logging.DEBUG),
    (Conflict, 409, "conflict", "Conflict", logging.DEBUG),
    # A reference the tenant does not have may be an attempt to point at another
    # tenant's row: worth a warning, as the issue asks for cross-tenant references.
    (ForeignKeyViolation, 422, "reference-not-found", "Referenced row not found", logging.INFO),
    (InvalidData, 422, "invalid-data", "Invalid data", logging.DEBUG),
    (InvalidTenant, 400, "tenant-unresolved", "Organization malformed", logging.WARNING),
    (RetryableError, 503, "retry", "Try again", logging.INFO),
    (DatabaseUnavailable, 503, "unavailable", "Service unavailable", logging.ERROR),
    (TenantContextRequired, 500, "tenant-context", "Tenant context missing", logging.ERROR),
)


def request_identity(request: Request) -> RequestIdentity:
    """Return the caller and organization the tenant middleware verified.

    Raises:
        TenantContextRequired: the route is not behind ``TenantMiddleware`` (or is exempt).
    """
    identity = request.scope.get("state", {}).get(IDENTITY_STATE_KEY)
    if not isinstance(identity, RequestIdentity):
        raise TenantContextRequired("no verified tenant: is TenantMiddleware installed?")
    return identity


def request_database(request: Request) -> Database[UnitOfWork]:
    """Return the application's ``Database`` from the lifespan state or ``app.state``.

    Raises:
        ConfigurationError: the application stored no ``Database`` under ``DATABASE_STATE_KEY``.
    """
    return scope_database(request.scope)


async def tenant_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """Yield a unit of work for the request's tenant; it rolls back unless committed.

    It is the ``Database``'s own unit of work class; annotate with that class to
    use its repositories: ``Annotated[AcmeUnitOfWork, Depends(tenant_unit_of_work)]``.

    Raises:
        TenantContextRequired: no verified tenant, or the bound tenant is not the verified one.
    """
    identity = request_identity(request)
    # The middleware binds the tenant in a ContextVar; if something between it and
    # the endpoint ran us in another context, refuse rather than guess.
    if current_tenant() != identity.org_id:
        raise TenantContextRequired("the tenant context does not match the verified tenant")
    async with request_database(request).unit_of_work(identity.org_id) as uow:
        yield uow


CurrentIdentity = Annotated[RequestIdentity, Depends(request_identity)]
TenantUnitOfWork = Annotated[UnitOfWork, Depends(tenant_unit_of_work)]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every ``TenancyError`` leaving an endpoint with a problem document.

    Isolation violations (SQLSTATE 42501) and references outside the tenant are
    logged at WARNING with the tenant id, operation and request id.
    """
    app.add_exception_handler(TenancyError, _problem_response)


async def _problem_response(request: Request, exc: Exception) -> Response:
    status, problem, title, level = _classify(exc)
    request_id = current_request_id() or request.headers.get(REQUEST_ID_HEADER, "-")
    if level >= logging.WARNING or logger.isEnabledFor(level):
        logger.log(
            level,
            "%s refused: %s",
            type(exc).__name__,
            exc,
            extra={"request_id": request_id, "status": status},
        )
    # Server-side failures get a fixed text; client errors carry the library's own
    # message, which never quotes another tenant's data.
    detail = str(exc) if status < 500 and not isinstance(exc, IsolationViolation) else title
    body = problem_body(
        status=status, problem=problem, title=title, detail=detail, request_id=request_id
    )
    headers = {REQUEST_ID_HEADER: request_id}
    if status == 503:
        headers["retry-after"] = "1"
    return Response(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _classify(exc: Exception) -> tuple[int, str, str, int]:
    if isinstance(exc, RequestRejected):
        return exc.status, exc.problem, exc.title, logging.WARNING
    for kind, status, problem, title, level in _PROBLEMS:
        if isinstance(exc, kind):
            return status, problem, title, level
    return 500, "internal", "Internal error", logging.ERROR


__all__ = [
    "DATABASE_STATE_KEY",
    "CurrentIdentity",
    "TenantUnitOfWork",
    "install_problem_handlers",
    "request_database",
    "request_identity",
    "tenant_unit_of_work",
]
