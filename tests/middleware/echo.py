"""A bare ASGI application that reports what it sees, and an in-process client for apps."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tenancy import current_tenant
from tenancy.context import current_request_id
from tenancy.web.asgi import Receive, Scope, Send
from tenancy.web.middleware import IDENTITY_STATE_KEY


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the tenant, identity and request id the application sees."""
    identity = scope.get("state", {}).get(IDENTITY_STATE_KEY)
    tenant = current_tenant()
    body = json.dumps(
        {
            "tenant": str(tenant) if tenant is not None else None,
            "user": str(identity.user_id) if identity is not None else None,
            "request_id": current_request_id(),
        }
    ).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client_for(app: Any) -> httpx.AsyncClient:
    """Return an HTTP client calling ``app`` in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenancy.test")
