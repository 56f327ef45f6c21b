"""ASGI vocabulary, the request id, and RFC 9457 problem responses.

Nothing here imports a web framework: the tenant middleware works under
Starlette, FastAPI, Litestar or any other ASGI server the same way.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_CONTENT_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"

#: What a caller-supplied request id may look like; anything else is replaced,
#: so the id is safe to put in log lines and response headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_OPERATION_CHARS = 200


def header_values(scope: Scope, name: str) -> list[str]:
    """Return every value of header ``name`` (lower-case) in the request, in order."""
    raw = name.encode("latin-1")
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == raw]


def request_id_from(scope: Scope) -> str:
    """Return the caller's ``x-request-id`` if it is well-formed, else a new random id."""
    values = header_values(scope, REQUEST_ID_HEADER)
    if len(values) == 1 and _REQUEST_ID.fullmatch(values[0]):
        return values[0]
    return uuid.uuid4().hex


def operation_name(scope: Scope) -> str:
    """Return ``"METHOD /path"`` for log records, with unprintable characters replaced."""
    method = scope.get("method", scope["type"].upper())
    path = str(scope.get("path", ""))[:_MAX_OPERATION_CHARS]
    # The path is caller input (percent-decoded): no newlines or escapes in log lines.
    return f"{method} " + "".join(ch if ch.isprintable() else "?" for ch in path)


def problem_body(
    *, status: int, problem: str, title: str, detail: str, request_id: str | None
) -> bytes:
    """Return an RFC 9457 problem document for ``status``.

    ``type`` is a URN naming the problem; ``instance`` names this occurrence by
    its request id, which is also in the log record of the rejection.
    """
    document: dict[str, Any] = {
        "type": f"urn:tenancy:problem:{problem}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id is not None:
        document["instance"] = f"urn:tenancy:request:{request_id}"
        document["request_id"] = request_id
    return json.dumps(document, separators=(",", ":")).encode()


async def send_problem(
    send: Send,
    *,
    status: int,
    body: bytes,
    request_id: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete ``application/problem+json`` HTTP response."""
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (REQUEST_ID_HEADER.encode(), request_id.encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: Where the application keeps its ``Database``: a key of the lifespan state (what
#: the lifespan yields) or an attribute of ``app.state``. The FastAPI dependency
#: and the middleware's default membership check read it from there per request,
#: so the ``Database`` can be created in the lifespan, after the app is built.
DATABASE_STATE_KEY = "tenancy_database"
