"""Core selects compiled once per statement shape, for the driver connection.

SQLAlchemy caches compiled statements by a *cache key*: two statements that
differ only in their bound values share it. Executing through SQLAlchemy Core
also builds an execution context and result rows per call; on the repositories'
list path that costs more than the query. Here the compiled SQL text and its
parameter order are kept per cache key, and each call only extracts its own
values (``construct_params`` with the statement's extracted parameters, which is
how SQLAlchemy reuses its own cache) and runs the text on asyncpg directly.

Statements that cannot be cached, or that need SQLAlchemy's post-compile step
(expanding ``IN`` lists, literal execution), are not handled: ``prepare`` returns
``None`` and the caller executes them through Core. Pinned to SQLAlchemy 2.x
(``pyproject.toml``), whose compiler API this uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import Select

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
#: Distinct statement shapes kept; the repositories produce a few dozen.
MAX_SHAPES = 512


@dataclass(frozen=True)
class _Shape:
    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    compiled: Any


_SHAPES: dict[Any, _Shape | None] = {}


def prepare(statement: Select[Any]) -> tuple[str, list[Any]] | None:
    """Return the SQL text and positional values of ``statement``, or ``None`` if unsupported."""
    key = statement._generate_cache_key()
    if key is None:
        return None
    shape = _SHAPES.get(key.key, _MISSING)
    if shape is _MISSING:
        shape = _compile(statement, key)
        if len(_SHAPES) >= MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[key.key] = shape
    if shape is None:
        return None
    params = shape.compiled.construct_params(extracted_parameters=key.bindparams)
    values = []
    for name in shape.names:
        value = params[name]
        process = shape.processors.get(name)
        values.append(process(value) if process is not None and value is not None else value)
    return shape.sql, values


_MISSING: Any = object()


def _compile(statement: Select[Any], key: Any) -> _Shape | None:
    compiled = _DIALECT.statement_compiler(_DIALECT, statement, cache_key=key)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    return _Shape(
        sql=compiled.string,
        names=tuple(compiled.positiontup or ()),
        # Only scalar processors occur for the types of these statements.
        processors={n: p for n, p in compiled._bind_processors.items() if callable(p)},
        compiled=compiled,
    )
