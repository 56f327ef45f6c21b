"""Relay processes of two versions of the code, so one benchmark run can compare them.

A variant is this checkout, or any git revision of it (``--baseline main``,
repeatable) unpacked into a temporary directory; its relay processes start in that
directory, with it first on ``PYTHONPATH``, and ``Variant.check`` makes sure they
import it. Both share the database and the measuring process, which only the relay
differs between; the benchmark alternates them round by round, so the machine's
noise falls on both.
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


#: This checkout: the candidate's code.
CHECKOUT = Path(__file__).resolve().parents[1]
_WHERE = "import tenancy; print(tenancy.__file__)"


@dataclass(frozen=True, slots=True)
class Variant:
    """A name and the directory its ``tenancy`` package comes from."""

    name: str
    source: Path = CHECKOUT

    def _environment(self, env: Mapping[str, str]) -> dict[str, str]:
        environment = dict(os.environ, **env)
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.source), environment.get("PYTHONPATH")) if p
        )
        return environment

    def check(self) -> None:
        """Make sure a process of this variant imports its own ``tenancy``.

        A ``python -c`` process puts its working directory first on ``sys.path``;
        started from a checkout, every variant ran that checkout's relay (a
        baseline measured itself). The processes now start in ``source``; this
        says so before anything is measured.

        Raises:
            SystemExit: ``tenancy`` comes from somewhere else.
        """
        found = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", _WHERE],
            env=self._environment({}),
            cwd=self.source,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not Path(found).resolve().is_relative_to(self.source):
            raise SystemExit(f"{self.name} imports tenancy from {found}, not from {self.source}")

    async def start(self, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """Start a relay process of this variant, as ``tenancy relay`` would run it."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RELAY_PROCESS,
            env=self._environment(env),
            cwd=self.source,
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
            found.append(Variant(f"baseline ({revision})", tree.resolve()))
        candidates = [*found, Variant("candidate")]
        for candidate in candidates:
            candidate.check()
        yield candidates
