"""The tenant context: which organization the current task works for.

A ``ContextVar`` follows ``await``, is isolated between concurrent tasks, and is
copied into tasks spawned inside it and into ``asyncio.to_thread`` calls. Code
that never binds a tenant sees ``None`` and fails closed. This module does no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Context, ContextVar, Token, copy_context
from typing import Any

from tenancy.errors import ConfigurationError, InvalidTenant, TenantContextRequired

_current_tenant: ContextVar[uuid.UUID | None] = ContextVar("tenancy_org_id", default=None)
_current_operation: ContextVar[str | None] = ContextVar("tenancy_operation", default=None)
_current_request_id: ContextVar[str | None] = ContextVar("tenancy_request_id", default=None)


def parse_tenant_id(value: object) -> uuid.UUID:
    """Return ``value`` as a UUID, or raise ``InvalidTenant``.

    This is the only gate between caller input and the ``SET LOCAL`` literal,
    so it accepts nothing but a real UUID or its canonical text forms.

    Raises:
        InvalidTenant: ``value`` is empty, not a string or UUID, or not a UUID.
    """
    if type(value) is uuid.UUID:
        return value
    if isinstance(value, uuid.UUID):
        # A subclass (a driver's UUID type, or one overriding __str__) is copied by value.
        return uuid.UUID(int=value.int)
    if not isinstance(value, str) or not value.strip():
        raise InvalidTenant("tenant id must be a non-empty UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidTenant("tenant id is not a valid UUID") from None


def current_tenant() -> uuid.UUID | None:
    """Return the tenant bound to the running task, or ``None``."""
    return _current_tenant.get()


def require_tenant() -> uuid.UUID:
    """Return the bound tenant.

    Raises:
        TenantContextRequired: no tenant is bound in this task.
    """
    org_id = _current_tenant.get()
    if org_id is None:
        raise TenantContextRequired("no tenant is bound: use db.tenant(org_id) or pass org_id")
    return org_id


def bind_tenant(org_id: uuid.UUID) -> Token[uuid.UUID | None]:
    """Bind an already-parsed tenant until ``unbind_tenant(token)`` (for context managers)."""
    return _current_tenant.set(org_id)


def unbind_tenant(token: Token[uuid.UUID | None]) -> None:
    """Restore the tenant that was bound before ``bind_tenant`` returned ``token``."""
    _current_tenant.reset(token)


@contextmanager
def tenant_context(org_id: object) -> Iterator[uuid.UUID]:
    """Bind ``org_id`` as the tenant for the enclosed block (sync or async code).

    Raises:
        InvalidTenant: ``org_id`` is not a UUID; nothing is bound then.
        ConfigurationError: (on exit) the block is left in another context than it
            was entered in, or after another tenant was bound over it without being
            unbound: typically an async generator that yielded inside the block,
            which lends the tenant to its caller. The binding is not restored then
            from the wrong place.
    """
    parsed = parse_tenant_id(org_id)
    token = _current_tenant.set(parsed)
    try:
        yield parsed
    finally:
        _restore(token, parsed)


def _restore(token: Token[uuid.UUID | None], bound: uuid.UUID) -> None:
    try:
        current = _current_tenant.get()
        if current is not bound:
            raise ConfigurationError(
                "tenant context left while another tenant was bound over it: do not hold "
                "db.tenant() across the yield of an async generator"
            )
        _current_tenant.reset(token)
    except ValueError as exc:
        # ContextVar.reset refuses a token from another Context.
        raise ConfigurationError(
            "tenant context left in another context than it was entered in: do not hold "
            "db.tenant() across the yield of an async generator or hand it to another task"
        ) from exc


def untenanted_context() -> Context:
    """Return a copy of the current context with no tenant bound.

    Start background tasks with it (``asyncio.create_task(coro, context=...)``):
    a task copies the context it is created in, so one started lazily inside a
    request would otherwise keep that request's tenant for its whole life.
    """
    context = copy_context()
    context.run(_current_tenant.set, None)
    return context


@contextmanager
def operation(name: str) -> Iterator[None]:
    """Name the operation in progress, for log records."""
    token = _current_operation.set(name)
    try:
        yield
    finally:
        _current_operation.reset(token)


def current_operation() -> str | None:
    """Return the operation name set by ``operation()``, or ``None``."""
    return _current_operation.get()


@contextmanager
def request_context(request_id: str) -> Iterator[str]:
    """Bind ``request_id`` (the request being served) for the enclosed block."""
    token = _current_request_id.set(request_id)
    try:
        yield request_id
    finally:
        _current_request_id.reset(token)


def current_request_id() -> str | None:
    """Return the id of the request being served, or ``None`` outside a request."""
    return _current_request_id.get()


TENANT_KEY = "tenancy.org_id"


def session_tenant(session: Any) -> uuid.UUID:
    """Return the tenant a tenant session was opened for (``session.info[TENANT_KEY]``).

    Raises:
        TenantContextRequired: the session was created without a tenant.
    """
    org_id = session.info.get(TENANT_KEY)
    if not isinstance(org_id, uuid.UUID):
        raise TenantContextRequired("this session has no tenant")
    return org_id
