"""A tenant read in fewer round trips: asyncpg's three vs psycopg 3's pipeline mode.

Variants, each one tenant transaction reading one ``customers`` row by id as the
app role under RLS:

* ``asyncpg``: what the library does (``BEGIN; SET LOCAL app.org_id = '…'`` as one
  simple-query message, the parameterised statement, ``COMMIT``): 3 round trips.
  Without a statement cache (``pooler=pgbouncer-transaction``) asyncpg prepares
  each statement first: 4.
* ``psycopg``: the same three steps with psycopg 3 (the driver, no pipelining).
* ``psycopg_pipeline``: psycopg 3 pipeline mode: ``BEGIN``, ``SET LOCAL``, the
  parameterised statement and ``COMMIT`` queued, one Sync, then the results: 1.

Measured in one run: round trips per transaction, counted through a loopback
proxy that holds every server reply ``--delay-ms`` (the time a read gains, over
the delay; one client); the time of one read on loopback; throughput at
``--concurrency`` (interleaved rounds, medians and ranges of the ratio to
asyncpg), direct and through pgbouncer in transaction mode. Then the guarantees
of the pipelined transaction are checked, not assumed: one transaction, the
tenant inside it only, no tenant sees no rows, all or nothing on an error, and
each client its own tenant through one shared pgbouncer server connection.

    python -m bench.round_trips --seconds 2 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import psycopg

from bench.database import bench_database
from bench.repository_throughput import seed
from bench.throughput import ops_per_second
from tenancy.testing.pgbouncer import running_pgbouncer

ConnectionT = TypeVar("ConnectionT", asyncpg.Connection, psycopg.AsyncConnection[Any])
READ = "SELECT * FROM customers WHERE id = {}"
Read = Callable[[uuid.UUID, uuid.UUID], Awaitable[Any]]


def set_local(org_id: uuid.UUID) -> str:
    """The tenant statement, as the library writes it.

    SET takes no bind parameters, so the id is a literal, and it is a ``uuid.UUID``
    (checked by its type) so nothing but a UUID can reach the SQL. ``set_config``
    would take one, but Citus propagates only ``SET LOCAL`` to the workers.
    """
    if not isinstance(org_id, uuid.UUID):
        raise TypeError("the tenant must be a uuid.UUID")
    return f"SET LOCAL app.org_id = '{org_id}'"


class Pool(Generic[ConnectionT]):
    """A fixed set of connections handed out one task at a time, with nothing run on return.

    The same for both drivers, so neither pays for its pool: asyncpg's own pool
    runs a reset query (one more round trip) on every release; SQLAlchemy's pool,
    which the library uses, does not.
    """

    def __init__(self, connections: list[ConnectionT]) -> None:
        self._free: asyncio.Queue[ConnectionT] = asyncio.Queue()
        for connection in connections:
            self._free.put_nowait(connection)
        self._all = connections

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[ConnectionT]:
        """Lend a connection for the block."""
        connection = await self._free.get()
        try:
            yield connection
        finally:
            self._free.put_nowait(connection)

    async def close(self) -> None:
        """Close every connection."""
        for connection in self._all:
            await connection.close()


async def asyncpg_pool(dsn: str, size: int, *, statement_cache: bool) -> Pool[Any]:
    """``size`` asyncpg connections; without a statement cache, as behind pgbouncer."""
    cache = 100 if statement_cache else 0
    return Pool([await asyncpg.connect(dsn, statement_cache_size=cache) for _ in range(size)])


async def psycopg_pool(dsn: str, size: int) -> Pool[psycopg.AsyncConnection[Any]]:
    """``size`` autocommit psycopg connections (the transactions here are explicit).

    ``prepare_threshold=None``: no named server-side statements, which pgbouncer's
    transaction mode cannot follow; Parse, Bind and Execute still go in one flight.
    """
    return Pool(
        [
            await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=None)
            for _ in range(size)
        ]
    )


def asyncpg_read(pool: Pool[Any]) -> Read:
    """The library's transaction over asyncpg: three round trips."""

    async def read(org_id: uuid.UUID, row_id: uuid.UUID) -> Any:
        async with pool.acquire() as connection:
            await connection.execute(f"BEGIN; {set_local(org_id)}")
            try:
                row = await connection.fetchrow(READ.format("$1"), row_id)
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
            return row

    return read


def psycopg_read(pool: Pool[psycopg.AsyncConnection[Any]]) -> Read:
    """The same transaction over psycopg, one statement at a time: three round trips."""

    async def read(org_id: uuid.UUID, row_id: uuid.UUID) -> Any:
        async with pool.acquire() as connection:
            # Without parameters psycopg sends the simple-query protocol: both in one.
            await connection.execute(f"BEGIN; {set_local(org_id)}".encode())
            try:
                cursor = await connection.execute(READ.format("%s"), (row_id,))
                row = await cursor.fetchone()
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
            return row

    return read


Statement = tuple[str | bytes, tuple[Any, ...]]


async def pipelined(
    connection: psycopg.AsyncConnection[Any], set_tenant: bytes, *statements: Statement
) -> list[list[Any]]:
    """Run ``BEGIN``, ``set_tenant``, ``statements`` and ``COMMIT`` in one flight; return rows.

    In pipeline mode every statement goes through the extended protocol, which
    takes one statement per message: BEGIN and SET LOCAL are two entries, still
    in the same flight. Leaving the block sends the one Sync and reads every
    result (an explicit ``pipeline.sync()`` inside it would cost a second round
    trip). An error in any entry makes the server skip the rest up to the Sync,
    COMMIT included, and leaves the transaction failed: it is rolled back here.
    """
    try:
        async with connection.pipeline():
            await connection.execute(b"BEGIN")
            await connection.execute(set_tenant)
            cursors = [await connection.execute(sql, params) for sql, params in statements]
            await connection.execute(b"COMMIT")
        return [await cursor.fetchall() for cursor in cursors]
    except BaseException:
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await connection.execute(b"ROLLBACK")
        raise


def pipelined_read(pool: Pool[psycopg.AsyncConnection[Any]]) -> Read:
    """The transaction in psycopg's pipeline mode: one round trip."""

    async def read(org_id: uuid.UUID, row_id: uuid.UUID) -> Any:
        async with pool.acquire() as connection:
            [rows] = await pipelined(
                connection, set_local(org_id).encode(), (READ.format("%s"), (row_id,))
            )
            return rows[0] if rows else None

    return read


# -- Counting round trips -------------------------------------------------------------


@asynccontextmanager
async def delaying_proxy(target_port: int, delay: float) -> AsyncIterator[int]:
    """A loopback TCP proxy to ``target_port`` that holds every server reply ``delay`` s."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: float) -> None:
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await chunks.get()
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)  # the simulated network latency
                writer.write(chunk)
                await writer.drain()
                chunks.task_done()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                chunks.put_nowait((time.perf_counter() + hold, chunk))
            await chunks.join()
        finally:
            sender.cancel()
            writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(client_r, server_w, 0.0), pipe(server_r, client_w, delay), return_exceptions=True
        )

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def seconds_per_read(read: Read, keys: list[tuple[uuid.UUID, uuid.UUID]]) -> float:
    """Mean seconds of ``read``, one at a time (after a few to warm up)."""
    for org_id, row_id in keys[:5]:
        await read(org_id, row_id)
    started = time.perf_counter()
    for org_id, row_id in keys[:50]:
        await read(org_id, row_id)
    return (time.perf_counter() - started) / 50


# -- Checking the guarantees ----------------------------------------------------------


async def check_guarantees(
    pool: Pool[psycopg.AsyncConnection[Any]], keys: list[tuple[uuid.UUID, uuid.UUID]]
) -> dict[str, Any]:
    """Check, on the pipelined transaction, what the library promises of every transaction."""
    org_id = keys[0][0]
    tenant = set_local(org_id).encode()
    found: dict[str, Any] = {}
    async with pool.acquire() as connection:
        xact = "SELECT pg_current_xact_id()::text, current_setting('app.org_id')"
        [[(first, inside)], [(second, _)]] = await pipelined(
            connection, tenant, (xact, ()), (xact, ())
        )
        found["one_transaction"] = first == second
        found["tenant_inside"] = inside == str(org_id)
        after = await connection.execute("SELECT current_setting('app.org_id', true)")
        found["tenant_gone_after_commit"] = (await after.fetchone()) in (("",), (None,))

        # No tenant: the policies show nothing (fail closed), pipelined or not.
        count = ("SELECT count(*) FROM customers", ())
        [[(visible,)]] = await pipelined(connection, b"SET LOCAL app.org_id = ''", count)
        found["no_tenant_sees_no_rows"] = visible == 0

        # An error anywhere: nothing before it commits, nothing after it runs.
        email = f"{uuid.uuid4().hex}@pipeline.example"
        insert = ("INSERT INTO customers (id, email) VALUES (%s, %s)", (uuid.uuid4(), email))
        try:
            await pipelined(connection, tenant, insert, ("SELECT 1 / 0", ()))
        except psycopg.errors.DivisionByZero:
            found["error_raised"] = True
        kept = ("SELECT count(*) FROM customers WHERE email = %s", (email,))
        [[(rows,)]] = await pipelined(connection, tenant, kept)
        found["error_commits_nothing"] = rows == 0
    return found


async def check_bouncer(dsn: str, keys: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[str, Any]:
    """16 clients, one pgbouncer server connection: each sees only its own tenant."""
    tenants = sorted({org for org, _ in keys}, key=str)[:16]
    pool = await psycopg_pool(dsn, len(tenants))
    wrong = 0
    done = 0

    async def client(org_id: uuid.UUID) -> None:
        nonlocal wrong, done
        for _ in range(50):
            seen = (
                "SELECT current_setting('app.org_id'), count(*) FILTER (WHERE org_id <> %s)"
                " FROM customers",
                (org_id,),
            )
            async with pool.acquire() as connection:
                [[(tenant, others)]] = await pipelined(connection, set_local(org_id).encode(), seen)
            wrong += tenant != str(org_id) or others != 0
            done += 1

    try:
        await asyncio.gather(*(client(org) for org in tenants))
    finally:
        await pool.close()
    return {"transactions": done, "saw_another_tenant": wrong}


# -- The run --------------------------------------------------------------------------


async def compare(
    reads: dict[str, Read], keys: list[tuple[uuid.UUID, uuid.UUID]], args: argparse.Namespace
) -> dict[str, Any]:
    """Interleaved rounds of every variant; medians and ranges of each one's ratio to asyncpg."""

    def op(read: Read) -> Callable[[Any], Awaitable[None]]:
        async def one(rng: Any) -> None:
            await read(*rng.choice(keys))

        return one

    for read in reads.values():
        await ops_per_second(op(read), 0.3, args.concurrency)  # warm up
    rounds = []
    for n in range(args.rounds):
        names = list(reads) if n % 2 == 0 else list(reversed(reads))
        measured = {
            name: await ops_per_second(op(reads[name]), args.seconds, args.concurrency)
            for name in names
        }
        rounds.append(measured)
    result: dict[str, Any] = {}
    for name in reads:
        ratios = [r[name] / r["asyncpg"] for r in rounds]
        result[name] = {
            "ops_per_s_median": round(statistics.median(r[name] for r in rounds)),
            "ratio_to_asyncpg_median": round(statistics.median(ratios), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        }
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed a scratch database; count round trips, measure throughput, check guarantees."""
    results: dict[str, Any] = {"concurrency": args.concurrency}
    async with bench_database("tenancy_round_trips") as settings:
        admin_dsn = str(settings.admin_url().set(drivername="postgresql"))
        keys = await seed(settings, admin_dsn)
        app_url = settings.app_url().set(drivername="postgresql")
        app_dsn = app_url.render_as_string(hide_password=False)

        @asynccontextmanager
        async def variants(
            dsn: str, size: int, *, statement_cache: bool = True
        ) -> AsyncIterator[dict[str, Read]]:
            apg = await asyncpg_pool(dsn, size, statement_cache=statement_cache)
            psy = await psycopg_pool(dsn, size)
            try:
                yield {
                    "asyncpg": asyncpg_read(apg),
                    "psycopg": psycopg_read(psy),
                    "psycopg_pipeline": pipelined_read(psy),
                }
            finally:
                await apg.close()
                await psy.close()

        # Round trips: the time a read gains when every server reply is held back
        # by the delay, in units of the delay (the driver's own time cancels out).
        delay = args.delay_ms / 1000
        counted: dict[str, float] = {}
        alone: dict[str, float] = {}
        async with delaying_proxy(int(app_url.port or 5432), delay) as port:
            proxied = app_url.set(port=port).render_as_string(hide_password=False)
            for cache in (True, False):
                async with (
                    variants(app_dsn, 1, statement_cache=cache) as direct,
                    variants(proxied, 1, statement_cache=cache) as delayed,
                ):
                    for name in direct:
                        if not cache and name != "asyncpg":
                            continue
                        label = name if cache else "asyncpg_no_statement_cache (pgbouncer)"
                        fast = await seconds_per_read(direct[name], keys)
                        slow = await seconds_per_read(delayed[name], keys)
                        counted[label] = round((slow - fast) / delay, 2)
                        alone[label] = round(1000 * fast, 3)
        results["round_trips_per_transaction"] = counted
        # With a network round trip of r ms, one read takes about alone + trips x r.
        results["ms_per_read_one_client_loopback"] = alone

        async with variants(app_dsn, args.concurrency) as reads:
            results["direct"] = await compare(reads, keys, args)
        checked = await psycopg_pool(app_dsn, 1)
        try:
            results["guarantees"] = await check_guarantees(checked, keys)
        finally:
            await checked.close()

        async with running_pgbouncer(app_url, pool_size=args.concurrency) as bouncer:
            bounced = bouncer.url(app_url).render_as_string(hide_password=False)
            async with variants(bounced, args.concurrency, statement_cache=False) as reads:
                results["through_pgbouncer_transaction_mode"] = await compare(reads, keys, args)
            single = bouncer.url(app_url, single=True).render_as_string(hide_password=False)
            results["guarantees"]["pgbouncer_one_server_connection"] = await check_bouncer(
                single, keys
            )
    return results


def main() -> None:
    """Parse arguments, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="proxy delay per reply")
    parser.add_argument("--out", type=Path, default=Path("bench/results/round_trips.json"))
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
