"""What an observer may say about an error: its class and its SQLSTATE, never its text.

Messages can carry values (a duplicate key's value, an email); class names and
SQLSTATE codes cannot, so only those reach span attributes and metric labels.
"""

from __future__ import annotations

#: How deep to look through causes and driver wrappers for a SQLSTATE.
_DEPTH = 6


def sqlstate_of(error: BaseException) -> str | None:
    """Return the SQLSTATE of ``error`` or of what caused it, if the driver gave one."""
    seen: BaseException | None = error
    for _ in range(_DEPTH):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else (seen.__cause__ or seen.__context__)
    return None
