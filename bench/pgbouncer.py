"""Run a real pgbouncer in transaction pooling mode in front of one database, for the load script.

Like the pooler suite's launcher (``tests/security/pooler/bouncer.py``) but with
the server pool size as a parameter and no pytest dependency. It listens on a
free loopback port, with a generated ini in a temporary directory, and is
terminated when the block ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import URL

#: pgbouncer refuses to run as root; any unprivileged account will do.
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT_S = 10

INI = """\
[databases]
{db} = host={host} port={port} dbname={db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 2000
log_connections = 0
log_disconnections = 0
"""


class PgBouncerError(RuntimeError):
    """pgbouncer is missing or did not start."""


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def pgbouncer(target: URL, *, pool_size: int) -> AsyncIterator[URL]:
    """Run pgbouncer in front of ``target``; yield ``target`` routed through it.

    Raises:
        PgBouncerError: the binary is missing (``apt-get install -y pgbouncer``) or failed.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        raise PgBouncerError("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-load-pgbouncer-"))
    ini = _write_config(workdir, target, port, pool_size)
    user = ["-u", UNPRIVILEGED_USER] if os.geteuid() == 0 else []
    process = await asyncio.create_subprocess_exec(
        binary, *user, str(ini), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    drain: asyncio.Task[None] | None = None
    try:
        if process.stderr is None:
            raise PgBouncerError("no stderr pipe to pgbouncer")
        log = await _await_start(process.stderr)
        # Keep reading, or a full pipe would stall pgbouncer.
        drain = asyncio.create_task(_drain(process.stderr, log))
        yield target.set(host="127.0.0.1", port=port)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        if drain is not None:
            drain.cancel()
        shutil.rmtree(workdir, ignore_errors=True)


def _write_config(workdir: Path, target: URL, port: int, pool_size: int) -> Path:
    auth_file = workdir / "users.txt"
    auth_file.write_text(f'"{target.username}" "{target.password or ""}"\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        INI.format(
            db=target.database,
            host=target.host or "127.0.0.1",
            port=target.port or 5432,
            listen_port=port,
            auth_file=auth_file,
            pool_size=pool_size,
        )
    )
    # pgbouncer drops root for an unprivileged user, who must be able to read these.
    workdir.chmod(0o755)
    for path in (auth_file, ini):
        path.chmod(0o644)
    return ini


async def _await_start(stream: asyncio.StreamReader) -> list[str]:
    log: list[str] = []
    async with asyncio.timeout(START_TIMEOUT_S):
        while "process up" not in (line := (await stream.readline()).decode()):
            if not line:
                raise PgBouncerError(f"pgbouncer exited: {''.join(log)}")
            log.append(line)
    return log


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode())
        del log[:-100]  # keep the tail only
