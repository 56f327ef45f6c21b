"""``/metrics`` and ``/healthz`` of a relay process, on a local port (the ``metrics`` extra).

A minimal HTTP/1.1 responder on asyncio streams: two GET paths, no keep-alive,
nothing read beyond the request line and headers. It runs in the relay's own
event loop, so a scrape reads the series the relay just updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tenancy.extras import missing_extra

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("metrics", exc) from exc

from tenancy.log import get_logger
from tenancy.relay.metrics import RelayMetrics

logger = get_logger(__name__)

#: Longest request head read; anything longer is answered 431 and closed.
_MAX_HEAD = 8_192
_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where the endpoint listens (the port chosen when 0 was asked for)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """Return the base URL, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serving_metrics(
    metrics: RelayMetrics, healthy: Callable[[], bool], *, host: str, port: int
) -> AsyncIterator[MetricsEndpoint]:
    """Serve ``/metrics`` and ``/healthz`` for the enclosed block."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await _answer(reader, metrics, healthy)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, content_type, body = 431, "text/plain", b"bad request\n"
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            await writer.drain()
        except ConnectionError:
            pass  # the scraper went away
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, limit=_MAX_HEAD)
    bound = server.sockets[0].getsockname()
    endpoint = MetricsEndpoint(host=bound[0], port=bound[1])
    logger.info("relay metrics on %s/metrics", endpoint.url)
    try:
        yield endpoint
    finally:
        server.close()
        await server.wait_closed()


async def _answer(
    reader: asyncio.StreamReader, metrics: RelayMetrics, healthy: Callable[[], bool]
) -> tuple[int, str, bytes]:
    async with asyncio.timeout(_READ_TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
    method, _, rest = head.decode("latin-1").partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    if method != "GET":
        return 405, "text/plain", b"method not allowed\n"
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
    if path == "/healthz":
        ok = healthy()
        body = json.dumps(
            {"status": "ok" if ok else "unavailable", "database": metrics.database_ok}
        )
        return (200 if ok else 503), "application/json", body.encode() + b"\n"
    return 404, "text/plain", b"not found\n"


_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
