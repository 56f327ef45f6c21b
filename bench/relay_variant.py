"""Relay processes of two versions of the code, so one benchmark run can compare them.

A variant is this checkout, or any git revision of it (``--baseline main``, repeatable)
unpacked into a temporary directory and put first on the relay process's
``PYTHONPATH``. Both share the database, the broker and the measuring process,
which only the relay differs between; the benchmark alternates them round by
round, so the machine's noise falls on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

RELAY_PROCESS = (
    "import asyncio\n"
    "from tenancy import TenancySettings\n"
    "from tenancy.relay.worker import run_relay\n"
    "asyncio.run(run_relay(TenancySettings()))\n"
)


@dataclass(frozen=True, slots=True)
class Variant:
    """A name and where its ``tenancy`` package comes from (None: this checkout)."""

    name: str
    source: Path | None = None

    async def start(self, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """Start a relay process of this variant, as ``tenancy relay`` would run it."""
        environment = dict(os.environ, **env)
        if self.source is not None:
            environment["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.source), environment.get("PYTHONPATH")) if p
            )
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RELAY_PROCESS,
            env=environment,
            stderr=asyncio.subprocess.DEVNULL,
        )


async def stop(process: asyncio.subprocess.Process) -> None:
    """Stop a relay as an orchestrator would: SIGTERM (finish the round), then wait."""
    if process.returncode is None:
        process.terminate()
        await process.wait()


@contextlib.contextmanager
def variants(baselines: list[str]) -> Iterator[list[Variant]]:
    """Yield a variant per revision in ``baselines``, then this checkout's; clean up after."""
    git = shutil.which("git")
    if baselines and git is None:
        raise SystemExit("--baseline needs git on the PATH")
    with tempfile.TemporaryDirectory(prefix="relay-baseline-") as directory:
        found = []
        for n, revision in enumerate(baselines):
            tree = Path(directory) / str(n)
            # The revision is the operator's own command-line argument, one argv item.
            archive = subprocess.run(  # noqa: S603
                [str(git), "archive", "--format=tar", revision, "tenancy", "repositories"],
                check=True,
                capture_output=True,
            ).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(tree, filter="data")
            found.append(Variant(f"baseline ({revision})", tree))
        yield [*found, Variant("candidate")]
