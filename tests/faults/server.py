"""A throwaway PostgreSQL 15 instance for the fault suite, and the faults it can suffer.

It runs from its own data directory on a free loopback port, never the shared
server on 5432, so the suite may stop, crash, freeze and restart it at will.
Run as root, the suite starts the server as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

PG_BIN = Path(os.environ.get("TENANCY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
SUPERUSER = "postgres"
#: Upper bound on every wait for the server (start, stop, processes gone).
WAIT_SECONDS = 30.0

# Small and quick, yet durable: fsync and synchronous_commit stay on, so an
# acknowledged commit must survive a crash of the whole instance.
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1",
    "-c shared_buffers=16MB",
    "-c max_connections=120",
    "-c fsync=on",
    "-c synchronous_commit=on",
    "-c max_wal_size=64MB",
    "-c checkpoint_timeout=30min",
    "-c log_min_messages=warning",
    "-c log_connections=off",
)


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_os_user(*argv: str | Path) -> list[str]:
    # Postgres refuses to run as root; as any other user it runs as that user.
    command = [str(a) for a in argv]
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


def _children(pid: int) -> list[int]:
    # Direct children from /proc: every server process is a child of the postmaster.
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


class FaultServer:
    """One PostgreSQL instance in a temporary directory, with fault helpers."""

    def __init__(self, *, prefix: str = "tenancy-faults-", options: tuple[str, ...] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.options = options
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._frozen: list[int] = []

    # -- lifecycle ------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster (trust authentication, superuser ``postgres``)."""
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER, OS_USER)
        subprocess.run(
            _as_os_user(
                PG_BIN / "initdb",
                "-D",
                self.data,
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",  # initdb only; the running server keeps fsync on
                "--no-instructions",
            ),
            check=True,
            capture_output=True,
            timeout=WAIT_SECONDS * 2,
        )

    def start(self) -> None:
        """Start the server on its port and wait until it accepts connections."""
        options = " ".join(
            (
                *SERVER_OPTIONS,
                *self.options,
                f"-p {self.port}",
                f"-c unix_socket_directories={self.root}",
            )
        )
        self._pg_ctl("start", "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        """Stop the server (fast: roll back open transactions, close sessions)."""
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Stop fast and start again, on the same port and data directory."""
        self.stop()
        self.start()

    def kill_postmaster(self) -> None:
        """SIGKILL the postmaster; wait for its orphaned children to go (SIGKILL them after 2 s).

        The next ``start`` runs crash recovery.
        """
        pid = self.postmaster_pid()
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0  # a backend mid-statement notices late
        while any(_alive(p) for p in [pid, *children]) and time.monotonic() < deadline:
            time.sleep(0.02)
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        self._wait_gone([pid, *children])
        # A dead postmaster not yet reaped by init still answers kill(pid, 0), so the
        # next one would take its lock file for a live server's. Every process of
        # the instance is dead by now, so the lock is stale.
        deadline = time.monotonic() + 2.0
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if Path(f"/proc/{pid}").exists():
            (self.data / "postmaster.pid").unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and all its children: the server answers nothing."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGSTOP)  # first, so that it forks no new child meanwhile
        self._frozen = [pid]
        for child in _children(pid):
            os.kill(child, signal.SIGSTOP)
            self._frozen.append(child)

    def thaw(self) -> None:
        """SIGCONT every process ``freeze`` stopped (safe to call when not frozen)."""
        frozen, self._frozen = self._frozen, []
        for pid in reversed(frozen):
            if _alive(pid):
                os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        """Thaw, stop (SIGKILL if it will not stop) and delete the directory."""
        self.thaw()
        try:
            if self.running():
                self.stop()
        except subprocess.SubprocessError:
            pid = self.postmaster_pid()
            os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> bool:
        """Return whether a postmaster of this data directory is alive."""
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists() and _alive(self.postmaster_pid())

    def postmaster_pid(self) -> int:
        """Return the postmaster's process id (from ``postmaster.pid``)."""
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def _pg_ctl(self, *argv: str) -> None:
        command = _as_os_user(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-t", "30", *argv)
        result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_SECONDS + 5)
        if result.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {argv[0]} failed: {result.stderr.strip()}\n{tail}")

    def _wait_gone(self, pids: list[int]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while any(_alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server processes did not exit: {pids}")
            time.sleep(0.02)

    # -- SQL as the superuser (setup and inspection only) ----------------------

    def create_database(self, dbname: str) -> URL:
        """Create ``dbname`` on this instance; return its superuser URL."""
        createdb = [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run([*createdb, "-U", SUPERUSER, dbname], check=True, capture_output=True)
        return self.url(dbname)

    def url(self, dbname: str) -> URL:
        """Return the superuser URL of ``dbname`` on this instance."""
        return make_url(f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}")

    async def connect(self, dbname: str) -> asyncpg.Connection:
        """Open a superuser connection to ``dbname`` (the caller closes it)."""
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, database=dbname, timeout=10
        )

    async def terminate_backends(self, dbname: str, application_name: str) -> list[int]:
        """``pg_terminate_backend`` every session of ``application_name``; return their pids.

        Waits (up to 5 s each) until each backend has exited.
        """
        connection = await self.connect(dbname)
        try:
            rows = await connection.fetch(
                "SELECT pid, pg_terminate_backend(pid, 5000) AS gone FROM pg_stat_activity"
                " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application_name,
            )
        finally:
            await connection.close()
        return [row["pid"] for row in rows if row["gone"]]

    async def set_read_only(self, dbname: str, read_only: bool) -> None:
        """Make new sessions of ``dbname`` read-only (or writable again)."""
        # From the maintenance database: sessions of ``dbname`` itself may be read-only.
        connection = await self.connect("postgres")
        try:
            # The database name comes from the suite, never from input; quoted anyway.
            quoted = '"' + dbname.replace('"', '""') + '"'
            if read_only:
                await connection.execute(
                    f"ALTER DATABASE {quoted} SET default_transaction_read_only = on"
                )
            else:
                await connection.execute(
                    f"ALTER DATABASE {quoted} RESET default_transaction_read_only"
                )
        finally:
            await connection.close()
