"""The tenant predicate's two forms on plain PostgreSQL: wrapped in a sub-select or not.

Citus refuses sub-queries in the policies of distributed tables, so the wrapped
form ``org_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid)``
would become ``org_id = nullif(current_setting('app.org_id', true), '')::uuid``.
This measures what that costs on one node: two identical tables of ``--rows``
rows over ``--tenants`` tenants, one per form, read as the app role through
``BEGIN; SET LOCAL app.org_id; ...; COMMIT`` (list of 50, count, lookup by a
unique key, keyset page), side by side in interleaved rounds; prints ops/s and
the ratio unwrapped/wrapped, and each form's plan for the list query.

    python -m bench.tenant_predicate --rows 1000000 --tenants 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import uuid
from pathlib import Path

import asyncpg

from bench.database import bench_database
from bench.throughput import ops_per_second

SETTING = "nullif(current_setting('app.org_id', true), '')::uuid"
FORMS = {"wrapped": f"(SELECT {SETTING})", "unwrapped": SETTING}

QUERIES = {
    "list50": "SELECT * FROM {t} ORDER BY created_at, id LIMIT 50",
    "count": "SELECT count(*) FROM {t}",
    "by_unique_key": "SELECT * FROM {t} WHERE email = $1",
    "keyset_page": "SELECT * FROM {t} WHERE (created_at, id) > ($1, $2) "
    "ORDER BY created_at, id LIMIT 50",
}


def table(form: str) -> str:
    """Return the table name of ``form``."""
    return f"predicate_{form}"


async def build(admin: asyncpg.Connection, rows: int, tenants: int, app_role: str) -> None:
    """Create and fill the two tables, with the same rows, indexes and policies but the form."""
    for form, value in FORMS.items():
        name = table(form)
        await admin.execute(
            f"""
            CREATE TABLE {name} (
                org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
                email text NOT NULL, name text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org_id, id), UNIQUE (org_id, email))
            """
        )
        await admin.execute(f"CREATE INDEX ON {name} (org_id, created_at, id)")
        await admin.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        await admin.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        predicate = f"org_id = {value}"
        await admin.execute(
            f"CREATE POLICY tenant_isolation ON {name} AS PERMISSIVE FOR ALL TO public "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )
        await admin.execute(
            f"CREATE POLICY tenant_guard ON {name} AS RESTRICTIVE FOR ALL TO public "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )
        await admin.execute(f"GRANT SELECT ON {name} TO {app_role}")
    await admin.execute(
        f"""
        INSERT INTO {table("wrapped")} (org_id, id, email, name, created_at)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g % $2), 12, '0'))::uuid,
               gen_random_uuid(), 'c' || g || '@example.com', 'Customer ' || g,
               now() - make_interval(secs => g)
        FROM generate_series(1, $1) AS g
        """,
        rows,
        tenants,
    )
    await admin.execute(f"INSERT INTO {table('unwrapped')} SELECT * FROM {table('wrapped')}")
    await admin.execute("ANALYZE")


def tenant(n: int) -> uuid.UUID:
    """Return the id of tenant ``n`` (as ``build`` wrote it)."""
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012x}")


async def run_query(
    pool: asyncpg.Pool, form: str, query: str, tenants: int, rows: int, rng: random.Random
) -> None:
    """One tenant transaction running ``query`` against the table of ``form``."""
    n = rng.randrange(tenants)
    args: list[object] = []
    if "$2" in query:
        args = [await_nothing_time(), uuid.UUID(int=0)]
    elif "$1" in query:
        # A row of that tenant: g % tenants == n, so g = n + k * tenants.
        g = n + tenants * rng.randrange(max(rows // tenants - 1, 1))
        args = [f"c{g or tenants}@example.com"]
    async with pool.acquire() as connection:
        await connection.execute(f"BEGIN; SET LOCAL app.org_id = '{tenant(n)}'")
        await connection.fetch(query.format(t=table(form)), *args)
        await connection.execute("COMMIT")


def await_nothing_time() -> object:
    """A keyset position in the middle of the data (rows go back one second each)."""
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(days=3)


async def main() -> None:
    """Build, explain, measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/results/tenant_predicate.json"))
    args = parser.parse_args()
    async with bench_database("tenancy_predicate") as settings:
        admin_dsn = settings.admin_url().set(drivername="postgresql")
        app_dsn = settings.app_url().set(drivername="postgresql")
        admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
        await build(admin, args.rows, args.tenants, settings.role_names().app)
        await admin.close()
        pool = await asyncpg.create_pool(
            app_dsn.render_as_string(hide_password=False),
            min_size=args.concurrency,
            max_size=args.concurrency,
        )
        async with pool.acquire() as connection:
            for form in FORMS:
                await connection.execute(f"BEGIN; SET LOCAL app.org_id = '{tenant(1)}'")
                plan = await connection.fetch("EXPLAIN " + QUERIES["list50"].format(t=table(form)))
                await connection.execute("COMMIT")
                print(f"-- {form}:\n" + "\n".join(r[0] for r in plan))
        results: dict[str, dict[str, list[float]]] = {}
        for name, query in QUERIES.items():
            figures: dict[str, list[float]] = {form: [] for form in FORMS}
            for _ in range(args.rounds):
                for form in FORMS:

                    async def op(rng: random.Random, form: str = form, query: str = query) -> None:
                        await run_query(pool, form, query, args.tenants, args.rows, rng)

                    figures[form].append(await ops_per_second(op, args.seconds, args.concurrency))
            ratios = [u / w for w, u in zip(figures["wrapped"], figures["unwrapped"], strict=True)]
            results[name] = {**figures, "unwrapped/wrapped": ratios}
            print(
                f"{name:<14} wrapped={statistics.median(figures['wrapped']):7.0f}/s "
                f"unwrapped={statistics.median(figures['unwrapped']):7.0f}/s "
                f"ratio={statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            )
        await pool.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
