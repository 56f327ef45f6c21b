"""``tenancy demo``, the README's main job: run for real on the local server and bundled broker.

One in-process run serves the tests that read its outcome; the command line is
run as a subprocess for its exit codes, its one-line errors and Ctrl-C. Every
run must leave no scratch database behind.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from repositories.demo.run import EXIT_INTERRUPTED, DemoReport, run_demo
from repositories.demo.story import PLANS
from tenancy.relay.local_broker import free_port
from tests.conftest import PG_HOST, PG_PORT, PG_SUPERUSER

SERVER = f"postgresql://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}"
COMMAND = str(Path(sys.executable).parent / "tenancy")
SCRATCH_LINE = re.compile(r"scratch database (tenancy_demo_[0-9a-f]+) on ")


@dataclass(frozen=True)
class DemoRun:
    """The report and the printed output of one in-process demo run."""

    report: DemoReport
    output: str


@pytest.fixture(scope="module")
async def demo() -> DemoRun:
    """Run the demo once, in-process, with the bundled broker."""
    out = io.StringIO()
    report = await run_demo(SERVER, out=out)
    return DemoRun(report, out.getvalue())


async def database_exists(name: str) -> bool:
    """Return whether the server has a database called ``name``."""
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        return bool(
            await connection.fetchval(
                "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name
            )
        )
    finally:
        await connection.close()


def scratch_name(output: str) -> str:
    """Return the scratch database name the demo printed."""
    found = SCRATCH_LINE.search(output)
    assert found is not None, output
    return found.group(1)


def environment(**extra: str) -> dict[str, str]:
    """Return this process's environment without any ``TENANCY_*`` variable, plus ``extra``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")},
        **extra,
    }


async def run_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tenancy`` command to completion (bounded at two minutes)."""
    return await asyncio.to_thread(
        subprocess.run,
        [COMMAND, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- what the demo shows ---------------------------------------------------------------


async def test_each_tenant_sees_exactly_its_own_customers(demo: DemoRun) -> None:
    story = demo.report.story
    seen = {t.plan.name: story.visible_customers[t.org_id] for t in story.tenants}

    assert seen == {plan.name: sorted(name for name, _ in plan.customers) for plan in PLANS}


async def test_another_tenants_row_is_not_found_and_raw_sql_sees_own_rows_only(
    demo: DemoRun,
) -> None:
    story = demo.report.story

    assert story.refusals["read"] == "NotFound"
    assert story.raw_count == len(PLANS[0].customers)
    assert story.deleted == "DELETE 0"


async def test_cross_tenant_writes_are_refused_by_the_database_as_typed_errors(
    demo: DemoRun,
) -> None:
    refusals = demo.report.story.refusals

    assert refusals["insert"] == "IsolationViolation"
    assert refusals["reference"] == "ForeignKeyViolation"
    assert refusals["move"] == "IsolationViolation"
    assert demo.output.count("(SQLSTATE 42501)") == 2
    assert "(SQLSTATE 23503, fk_payment_methods_org_id_customer_id_customers)" in demo.output


async def test_each_refusal_is_logged_once_with_the_tenant(demo: DemoRun) -> None:
    acme = demo.report.story.tenants[0]
    logged = [line for line in demo.output.splitlines() if "log: WARNING tenancy.refusals" in line]

    assert len(logged) == 3
    assert all(f"[org {str(acme.org_id)[:8]}]" in line for line in logged)


async def test_work_without_a_tenant_fails_closed(demo: DemoRun) -> None:
    assert demo.report.story.refusals["no tenant"] == "TenantContextRequired"


async def test_the_payment_order_is_paid_in_committed_steps(demo: DemoRun) -> None:
    assert demo.report.story.order_statuses == ["pending", "authorized", "paid"]


async def test_every_committed_event_shown_arrives_once_with_its_tenant(demo: DemoRun) -> None:
    events = demo.report.events
    tenants = {t.org_id for t in demo.report.story.tenants}
    types = Counter(type(r.event).event_type() for r in events.received)
    changes = [
        (r.event.model_dump()["old_status"], r.event.model_dump()["new_status"])
        for r in events.received
        if type(r.event).event_type() == "PaymentOrderStatusChanged"
    ]

    assert len(events.received) == events.expected
    assert len({r.event.event_id for r in events.received}) == events.expected
    assert types["OrganizationCreated"] == 2
    assert types["PaymentOrderCreated"] == 1
    assert changes == [("pending", "authorized"), ("authorized", "paid")]
    assert {r.org_id for r in events.received} == tenants
    assert all(r.headers["org_id"] == str(r.org_id).encode() for r in events.received)
    assert events.stats.dead == 0


async def test_the_scratch_database_is_dropped_afterwards(demo: DemoRun) -> None:
    assert scratch_name(demo.output) == demo.report.database
    assert not await database_exists(demo.report.database)


# -- the command line ----------------------------------------------------------------


async def test_the_command_exits_0_and_leaves_no_database_behind() -> None:
    result = await run_command("demo", env=environment(TENANCY_DEMO_SERVER_URL=SERVER))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "bundled (Tansu)" in result.stdout
    assert re.search(r"all \d+ arrived", result.stdout)
    assert not await database_exists(scratch_name(result.stdout))


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    result = await run_command(
        "demo", "--server-url", "postgresql://postgres:s3cret-pw@127.0.0.1:1", env=environment()
    )

    assert result.returncode == 1
    assert result.stderr.startswith("tenancy: error: cannot connect to PostgreSQL at ")
    assert result.stderr.count("\n") == 1
    assert "s3cret-pw" not in result.stderr + result.stdout


async def test_an_unreachable_configured_broker_fails_and_the_database_is_dropped() -> None:
    silent = f"127.0.0.1:{free_port()}"
    env = environment(TENANCY_KAFKA_BOOTSTRAP_SERVERS=silent, TENANCY_KAFKA_CONNECT_TIMEOUT="2")

    result = await run_command("demo", "--server-url", SERVER, env=env)

    assert result.returncode == 1
    assert result.stderr.startswith(f"tenancy: error: no Kafka broker at {silent}")
    assert result.stderr.count("\n") == 1
    assert not await database_exists(scratch_name(result.stdout))


async def test_ctrl_c_stops_the_demo_drops_the_database_and_exits_130() -> None:
    # A configured broker that accepts connections and never answers holds the demo
    # at its events step, so it cannot finish before the signal lands however late
    # this test reads its output (with the bundled broker a loaded machine once let
    # it finish first and exit 0).
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        COMMAND,
        "demo",
        "--server-url",
        SERVER,
        env=environment(
            TENANCY_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
            TENANCY_KAFKA_CONNECT_TIMEOUT="120",
            TENANCY_KAFKA_REQUEST_TIMEOUT_MS="120000",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # A shell without job control starts background jobs with SIGINT ignored, and
        # Python then never turns it into KeyboardInterrupt: a suite run as `make test &`
        # would see the demo ignore Ctrl-C. Give it the terminal's default disposition.
        preexec_fn=sigint_default,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        # Interrupt as soon as the scratch database exists: the whole scenario is still ahead.
        async with asyncio.timeout(60):
            seen = ""
            while (found := SCRATCH_LINE.search(seen)) is None:
                line = await process.stdout.readline()
                assert line, f"the demo ended before creating its database: {seen}"
                seen += line.decode()
            process.send_signal(signal.SIGINT)
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        silent.close()
        for writer in held:
            writer.close()

    assert process.returncode == EXIT_INTERRUPTED, stderr.decode()
    assert stderr.decode() == "tenancy: demo interrupted; cleaned up\n"
    assert not await database_exists(found.group(1))


def sigint_default() -> None:
    """Restore SIGINT's default disposition in a child about to exec (see its caller)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
