"""Decoding the JSON values Postgres sends, without ``json.loads``'s per-call checks.

``json.loads`` checks the type of its argument and a byte-order mark, then
matches whitespace before and after the value with a regular expression. What
Postgres sends for ``json``/``jsonb`` columns is a string without either, so
the C scanner underneath is called directly; anything it does not consume
entirely goes through ``json.loads``, which raises the usual error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Set in JSONDecoder.__init__ (the C scanner when available); not in typeshed.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_json(text: str) -> Any:
    """Return the Python value of the JSON document ``text``."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


async def setup_jsonb_codec(connection: Any) -> None:
    """Decode ``jsonb`` in text format straight with ``decode_json``.

    Installed in place of the asyncpg dialect's ``setup_asyncpg_jsonb_codec``
    (through ``tenancy.internals.install_jsonb_codec``): SQLAlchemy's own codec takes the binary
    format and wraps the decoder to strip the format's version byte, one more
    call and copy per value. Values to write arrive as JSON text already
    (SQLAlchemy's JSON bind processing, the outbox's own serialisation).
    """
    await connection.driver_connection.set_type_codec(
        "jsonb", encoder=str, decoder=decode_json, schema="pg_catalog", format="text"
    )


__all__ = ["decode_json", "setup_jsonb_codec"]
