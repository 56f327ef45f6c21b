"""Run a real pgbouncer (transaction pooling) in front of one database, for tests and benches.

It listens on a free loopback port with a generated ini in a temporary directory
and is terminated when the block ends. Two pooled databases are declared: the
target database (``pool_size`` server connections) and a ``<db>_single`` alias of
it with one server connection, so that every client of the alias provably shares
one server connection. Needs the ``pgbouncer`` binary (Debian: ``apt-get install
pgbouncer``); as root, pgbouncer runs as ``nobody``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from tenancy.errors import ConfigurationError
from tenancy.relay.local_broker import free_port

# pgbouncer refuses to run as root; any unprivileged account will do.
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT_S = 10

INI = """\
[databases]
{db} = host={host} port={port} dbname={db}
{db}_single = host={host} port={port} dbname={db} pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
log_connections = 0
log_disconnections = 0
"""


@dataclass(frozen=True)
class Bouncer:
    """A running pgbouncer: where it listens and what it pools."""

    port: int
    database: str

    def url(self, base: URL, *, single: bool = False) -> URL:
        """Return ``base`` routed through pgbouncer (``single``: the one-connection pool)."""
        database = f"{self.database}_single" if single else self.database
        return base.set(host="127.0.0.1", port=self.port, database=database)


@asynccontextmanager
async def running_pgbouncer(
    target: URL, *, pool_size: int = 2, max_client_conn: int = 1000
) -> AsyncIterator[Bouncer]:
    """Run pgbouncer in front of ``target`` until the block ends (target's user logs in).

    Raises:
        ConfigurationError: the binary is missing, or pgbouncer did not start.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        raise ConfigurationError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    bouncer = Bouncer(port=free_port(), database=str(target.database))
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-pgbouncer-"))
    ini = _write_config(workdir, target, bouncer, pool_size, max_client_conn)
    user = ["-u", UNPRIVILEGED_USER] if os.geteuid() == 0 else []
    process = await asyncio.create_subprocess_exec(
        binary, *user, str(ini), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    drain: asyncio.Task[None] | None = None
    try:
        if process.stderr is None:
            raise ConfigurationError("no stderr pipe to pgbouncer")
        log = await _await_start(process.stderr)
        # Keep reading, or a full pipe would stall pgbouncer.
        drain = asyncio.create_task(_drain(process.stderr, log))
        yield bouncer
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        if drain is not None:
            drain.cancel()
        shutil.rmtree(workdir, ignore_errors=True)


def _write_config(
    workdir: Path, target: URL, bouncer: Bouncer, pool_size: int, max_client_conn: int
) -> Path:
    auth_file = workdir / "users.txt"
    auth_file.write_text(f'"{target.username}" "{target.password or ""}"\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        INI.format(
            db=bouncer.database,
            host=target.host or "127.0.0.1",
            port=target.port or 5432,
            listen_port=bouncer.port,
            auth_file=auth_file,
            pool_size=pool_size,
            max_client_conn=max_client_conn,
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
                raise ConfigurationError(f"pgbouncer exited: {''.join(log)}")
            log.append(line)
    return log


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode())
        del log[:-100]  # keep the tail only
