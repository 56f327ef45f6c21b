"""Start and stop a real pgbouncer (transaction pooling) for the tests.

It listens on a free loopback port with a generated ini in a temporary directory.
Two pooled databases are declared: the test database itself (two server
connections), and a ``_single`` alias of it with one server connection, so that
every client of the alias provably shares it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tenancy import TenancySettings
from tenancy.settings import APP_ROLE

SERVER_POOL_SIZE = 2
# pgbouncer refuses to run as root; any unprivileged account will do.
UNPRIVILEGED_USER = "nobody"

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
max_client_conn = 1000
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


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def running_pgbouncer(settings: TenancySettings) -> AsyncIterator[Bouncer]:
    """Run pgbouncer in front of the database of ``settings`` until the block ends."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        pytest.fail("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    target = settings.app_url()
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-pgbouncer-"))
    auth_file = workdir / "users.txt"
    auth_file.write_text(f'"{APP_ROLE}" "{settings.app_password.get_secret_value()}"\n')
    bouncer = Bouncer(port=free_port(), database=str(target.database))
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        INI.format(
            db=bouncer.database,
            host=target.host,
            port=target.port or 5432,
            listen_port=bouncer.port,
            auth_file=auth_file,
            pool_size=SERVER_POOL_SIZE,
        )
    )
    for path in (workdir, auth_file, ini):
        path.chmod(0o755 if path.is_dir() else 0o644)
    user = ["-u", UNPRIVILEGED_USER] if os.geteuid() == 0 else []
    process = await asyncio.create_subprocess_exec(
        binary, *user, str(ini), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(10):
            while "process up" not in (line := (await process.stderr.readline()).decode()):
                if not line:
                    pytest.fail(f"pgbouncer exited: {''.join(log)}")
                log.append(line)
        # Keep reading, or a full pipe would stall pgbouncer.
        drain = asyncio.create_task(_drain(process.stderr, log))
        yield bouncer
    finally:
        process.terminate()
        await process.wait()
        if drain is not None:
            drain.cancel()
        shutil.rmtree(workdir, ignore_errors=True)


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode())
