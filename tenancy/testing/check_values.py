"""Synthetic values that a table's CHECK constraints accept, judged by Postgres itself.

The rolled-back probe drops a table's CHECK constraints inside its transaction.
The committed probe (Citus) writes its rows in a transaction that commits, where
dropping a constraint would change the schema for everyone, so its rows must pass
the constraints as they are. For each constraint over columns the probe fills,
candidates are tried in turn: the usual random value, then the string literals
and numbers the constraint itself names (``status IN ('active', ...)``), then
random short upper-case codes (ISO currencies and countries). The server
evaluates the constraints' own expressions on a sample row; nothing is parsed
but the literals. A constraint no candidate passes is left to fail the insert
(SQLSTATE 23514), which the probe reports.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable, Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.testing.result import TenantTable
from tenancy.testing.value import Column, synthetic_value

#: Makes a fresh value (as text) for one column per call.
Maker = Callable[[], str]

# Every CHECK constraint the table's rows must pass (inherited ones included),
# with the columns it reads.
_CHECKS = text(
    """
    SELECT pg_get_expr(k.conbin, k.conrelid),
           ARRAY(SELECT a.attname::text FROM unnest(k.conkey) AS n(attnum)
                 JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = n.attnum)
    FROM pg_constraint AS k
    WHERE k.conrelid = :oid AND k.contype = 'c'
    ORDER BY k.conname
    """
)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"(?<![\w.])-?[0-9]+(?:\.[0-9]+)?(?![\w.])")


async def check_makers(
    connection: AsyncConnection, table: TenantTable, columns: Sequence[Column]
) -> dict[str, Maker]:
    """Return a value maker per filled column under which the table's CHECK constraints pass.

    Runs in the caller's transaction (each evaluation in a savepoint); writes nothing.
    """
    filled = [c for c in columns if not c.is_tenant]
    makers: dict[str, Maker] = {c.name: _random(table, c) for c in filled}
    names = {c.name for c in filled}
    checks = [
        (str(expression), list(reads))
        for expression, reads in await connection.execute(_CHECKS, {"oid": table.oid})
        if reads and set(reads) <= names
    ]
    if not checks:
        return makers
    judge = _Judge(connection, filled, [expression for expression, _ in checks])
    passing = await judge.passing(makers)
    for index, (expression, reads) in enumerate(checks):
        if index in passing:
            continue
        for column in (c for c in filled if c.name in reads):
            found = await _first_accepted(judge, makers, passing, index, column, expression, table)
            if found is not None:
                makers, passing = found
                break
    return makers


async def _first_accepted(
    judge: _Judge,
    makers: dict[str, Maker],
    passing: set[int],
    index: int,
    column: Column,
    expression: str,
    table: TenantTable,
) -> tuple[dict[str, Maker], set[int]] | None:
    # A candidate counts if the constraint passes and none that passed stops passing.
    for candidate in _candidates(table, column, expression):
        trial = {**makers, column.name: candidate}
        now = await judge.passing(trial)
        if index in now and passing <= now:
            return trial, now
    return None


class _Judge:
    """Evaluates the constraints' expressions on one sample row of the makers' values."""

    def __init__(
        self, connection: AsyncConnection, columns: list[Column], expressions: list[str]
    ) -> None:
        self.connection = connection
        quote = connection.dialect.identifier_preparer.quote
        # The expressions and types come from the catalog (pg_get_expr, format_type),
        # not from input; the sample values are bound. The expressions name the
        # columns unqualified, as the derived row does.
        row = ", ".join(
            f"CAST(CAST(:v{i} AS text) AS {c.type_sql}) AS {quote(c.name)}"
            for i, c in enumerate(columns)
        )
        judged = ", ".join(f"({e}) IS NOT FALSE" for e in expressions)
        self.statement = text(f"SELECT {judged} FROM (SELECT {row}) AS probe_row")
        self.columns = columns

    async def passing(self, makers: dict[str, Maker]) -> set[int]:
        """Return the indexes of the constraints a sample row of ``makers`` passes."""
        values = {f"v{i}": makers[c.name]() for i, c in enumerate(self.columns)}
        try:
            async with self.connection.begin_nested():
                verdicts = (await self.connection.execute(self.statement, values)).one()
        except DBAPIError:
            # A candidate that does not even cast to the column's type passes nothing.
            return set()
        return {i for i, ok in enumerate(verdicts) if ok}


def _random(table: TenantTable, column: Column) -> Maker:
    return lambda: synthetic_value(table, column)


def _candidates(table: TenantTable, column: Column, expression: str) -> list[Maker]:
    literals = [m.replace("''", "'") for m in _QUOTED.findall(expression)]
    if column.category != "S":
        literals += _NUMBER.findall(_QUOTED.sub("", expression))
    found = [_random(table, column), *(_constant(v) for v in dict.fromkeys(literals))]
    if column.category == "S":
        found += [_code(3), _code(2)]
    return found


def _constant(value: str) -> Maker:
    return lambda: value


def _code(length: int) -> Maker:
    return lambda: "".join(secrets.choice(string.ascii_uppercase) for _ in range(length))
