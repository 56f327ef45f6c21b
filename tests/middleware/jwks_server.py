"""A real JWKS endpoint on a loopback port: serves the keys a test sets and counts its fetches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class JwksServer:
    """An identity provider's key set endpoint; ``keys`` is what the next fetch returns."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        #: While unset, a fetch is accepted and then never answered (a hung provider).
        self.responsive = asyncio.Event()
        self.responsive.set()
        self.url = ""

    def publish(self, key: rsa.RSAPrivateKey, kid: str | None, **members: Any) -> None:
        """Add the public half of ``key`` to the set, under ``kid``."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update({"use": "sig", "alg": "RS256", **members})
        if kid is not None:
            jwk["kid"] = kid
        self.keys.append(jwk)

    def withdraw(self, kid: str) -> None:
        """Remove the key named ``kid`` from the set."""
        self.keys = [jwk for jwk in self.keys if jwk.get("kid") != kid]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.fetches += 1
            await self.responsive.wait()
            body = json.dumps({"keys": self.keys}).encode()
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def jwks_server() -> AsyncIterator[JwksServer]:
    """Run a ``JwksServer`` on a free loopback port for the block."""
    endpoint = JwksServer()
    server = await asyncio.start_server(endpoint._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoint.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield endpoint
    finally:
        endpoint.responsive.set()  # let a hung handler finish before the server closes
        server.close()
        await server.wait_closed()
