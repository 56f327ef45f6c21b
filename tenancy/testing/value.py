"""Synthetic values for the columns a probe row must fill (NOT NULL, no default)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from tenancy.testing.result import TenantTable

# By pg_type.typcategory; each value is text that casts to any type of the category.
_BY_CATEGORY = {
    "A": "{}",  # arrays
    "B": "false",
    "I": "127.0.0.1",
    "R": "empty",  # ranges
    "T": "1 second",
    "V": "0",  # bit strings
}
# Category U (user-defined) is a mixed bag; these are the common built-ins in it.
_BY_TYPE_NAME = {
    "json": "{}",
    "jsonb": "{}",
}


@dataclass(frozen=True)
class Column:
    """A column of a probed table, as read from the catalog."""

    name: str
    type_sql: str
    category: str
    type_name: str
    first_label: str | None
    is_tenant: bool


def synthetic_value(table: TenantTable, column: Column) -> str:
    """Return a text value that casts to ``column``'s type, random where that helps.

    Random strings, numbers and UUIDs keep the two probe rows apart under any unique
    index (and make two distinct tenants of any tenant-column type).

    Raises:
        ValueError: no value can be made up for the column's type.
    """
    if column.category == "S":
        return secrets.token_hex(8)
    if column.category == "E" and column.first_label is not None:
        return column.first_label
    if column.type_name == "uuid":
        return str(uuid.uuid4())
    if column.type_name == "bytea":
        # Random too: a bytea key (a token's hash) would reject the second probe row.
        return "\\x" + secrets.token_hex(16)
    if column.category == "D":
        # A random moment of 2000 (date and time types alike), so that two rows differ
        # under a unique key on a date; one year keeps within most partition ranges.
        month, day = 1 + secrets.randbelow(12), 1 + secrets.randbelow(28)
        clock = (
            f"{secrets.randbelow(24):02d}:{secrets.randbelow(60):02d}:{secrets.randbelow(60):02d}"
        )
        return f"2000-{month:02d}-{day:02d} {clock}+00"
    if column.category == "N":
        # Random, so two probe rows never collide (23505) on a numeric key or tenant;
        # within int2's range for smallint columns.
        return str(1 + secrets.randbelow(32_000 if column.type_name == "int2" else 2**31 - 2))
    value = _BY_CATEGORY.get(column.category) or _BY_TYPE_NAME.get(column.type_name)
    if value is None:
        raise ValueError(
            f"cannot make up a value for {table.qualified}.{column.name} ({column.type_sql})"
        )
    return value
