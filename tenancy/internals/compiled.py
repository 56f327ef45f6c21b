"""A compiled statement's positional parameters and a clause's cache key.

The list fast path caches SQL text per statement shape and fills the values of
each call from the filter's cache key, in the order SQLAlchemy's own statement
cache relies on; the outbox orders its parameters the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ClauseElement
from sqlalchemy.engine import Compiled


@dataclass(frozen=True)
class PositionalParameter:
    """One ``$n`` parameter of a compiled statement, in order."""

    name: str
    bind: BindParameter[Any]
    #: The type's bind processor for the compiling dialect, if it has one.
    processor: Callable[[Any], Any] | None


def cache_key(clause: ClauseElement) -> tuple[Any, Sequence[BindParameter[Any]]] | None:
    """Return ``clause``'s cache key and its bound parameters, or ``None`` if uncacheable.

    ``_generate_cache_key`` is what ``Connection.execute`` uses for its cache;
    the parameters come in the order the key was generated, the same for every
    clause of one key.
    """
    found = clause._generate_cache_key()
    if found is None:
        return None
    return found.key, found.bindparams


def positional_names(compiled: Compiled) -> tuple[str, ...]:
    """Return the names of ``compiled``'s parameters in ``$n`` order (``positiontup``)."""
    return tuple(getattr(compiled, "positiontup", None) or ())


def positional_parameters(compiled: Compiled) -> tuple[PositionalParameter, ...]:
    """Return ``compiled``'s parameters in ``$n`` order, with their bind processors.

    Uses the compiler's ``binds`` and ``_bind_processors``.
    """
    binds = compiled.binds  # type: ignore[attr-defined]  # SQLCompiler
    processors = compiled._bind_processors  # type: ignore[attr-defined]
    return tuple(
        PositionalParameter(name, binds[name], p if callable(p := processors.get(name)) else None)
        for name in positional_names(compiled)
    )


def needs_post_compile(compiled: Compiled) -> bool:
    """Return whether ``compiled`` needs SQLAlchemy's execution-time rendering (IN lists)."""
    return bool(
        compiled.post_compile_params  # type: ignore[attr-defined]  # SQLCompiler
        or compiled.literal_execute_params  # type: ignore[attr-defined]
    )


__all__ = [
    "PositionalParameter",
    "cache_key",
    "needs_post_compile",
    "positional_names",
    "positional_parameters",
]
