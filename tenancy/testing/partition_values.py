"""Values a partitioned table accepts: read from its partitions' bounds.

A probe row with made-up values routes nowhere when the partitions cover other
values (a region list, a range of recent months); Postgres answers 23514. The
bounds (``pg_get_expr(relpartbound, oid)``) say what each partition takes:
``FOR VALUES IN ('eu', 'us')``, ``FOR VALUES FROM ('2030-01-01') TO ('2030-02-01')``,
``FOR VALUES WITH (modulus 4, remainder 0)`` or ``DEFAULT``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: A SQL literal as Postgres renders it in a bound: a quoted string (with '' inside),
#: a number, or a keyword (TRUE, FALSE, NULL, MINVALUE, MAXVALUE).
_LITERAL = re.compile(r"'(?:[^']|'')*'|[-+]?[0-9][0-9.eE+-]*|[A-Za-z_]+")
_LIST = re.compile(r"^FOR VALUES IN \((?P<values>.*)\)$", re.DOTALL)
_RANGE = re.compile(r"^FOR VALUES FROM \((?P<low>.*?)\) TO \((?P<high>.*)\)$", re.DOTALL)
_UNBOUNDED = {"MINVALUE", "MAXVALUE", "NULL"}


def literals(text: str) -> list[str | None]:
    """Return the literals of a bound's list as text values (``None`` for NULL)."""
    found: list[str | None] = []
    for token in _LITERAL.findall(text):
        if token.startswith("'"):
            found.append(token[1:-1].replace("''", "'"))
        elif token.upper() == "NULL":
            found.append(None)
        else:
            found.append(token)
    return found


def routable_rows(keys: Sequence[str], bounds: Sequence[str]) -> list[dict[str, str]]:
    """Return, per value a partition takes, the key columns' values (text) that route there.

    One row per literal of a LIST partition and one per RANGE partition (its lower
    bound, which the range includes); hash and default partitions take anything and
    add nothing; an unbounded or NULL side is skipped.
    """
    rows: list[dict[str, str]] = []
    for bound in bounds:
        listed = _LIST.match(bound)
        if listed is not None and len(keys) == 1:
            rows.extend({keys[0]: value} for value in literals(listed["values"]) if value)
            continue
        ranged = _RANGE.match(bound)
        if ranged is not None:
            low = literals(ranged["low"])
            if len(low) == len(keys) and all(
                value is not None and value.upper() not in _UNBOUNDED for value in low
            ):
                rows.append({key: str(value) for key, value in zip(keys, low, strict=True)})
    return rows
