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


__all__ = ["decode_json"]
