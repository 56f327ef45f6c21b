"""Typed, immutable rows: a list's columns straight into a type the service declares.

For API responses and reports, where ORM instances (identity map, change
tracking, lazy loading) are cost without use. The row type is a dataclass
(``frozen=True`` is the fastest and cannot be changed by mistake) or a pydantic
model (validated on construction). Its fields name mapped attributes of the
model; each row is built from those columns only, after SQLAlchemy's result
processing, so values equal what the ORM would load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from tenancy.errors import ConfigurationError

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class RowBuilder(Generic[RowT]):
    """Builds instances of ``row_type`` from rows of a model's loaded columns."""

    row_type: type[RowT]
    names: tuple[str, ...]
    #: Position of each of ``names`` in the loaded row.
    positions: tuple[int, ...]
    #: Whether ``row_type`` takes ``names`` positionally, in this order (a dataclass
    #: without keyword-only fields): a third faster than keywords.
    positional: bool = False
    #: Whether ``row_type``'s ``__init__`` is the one ``dataclasses`` generated and
    #: does nothing but store each field (see ``_stores_fields_only``): a row's
    #: values then go straight into a new instance's ``__dict__``, as that
    #: ``__init__`` would put them, at 60% of its cost for a frozen dataclass.
    direct: bool = False

    def build_all(
        self,
        rows: Sequence[Sequence[Any]],
        conversions: Sequence[tuple[int, Callable[[Any], Any]]] = (),
    ) -> list[RowT]:
        """Return one ``row_type`` per row; ``conversions``: result processors still to apply."""
        if conversions:
            rows = [_converted(row, conversions) for row in rows]
        make = self.row_type
        # itemgetter of one position returns the value, not a 1-tuple.
        pick = itemgetter(*self.positions) if len(self.positions) > 1 else None
        if pick is None:
            pairs = tuple(zip(self.names, self.positions, strict=True))
            return [make(**{name: row[i] for name, i in pairs}) for row in rows]
        if self.direct:
            names = self.names
            new = object.__new__
            built = []
            for row in rows:
                obj = new(make)
                # Equal lengths by construction; a strict zip costs a quarter more.
                obj.__dict__.update(zip(names, pick(row), strict=False))
                built.append(obj)
            return built
        if self.positional:
            return [make(*pick(row)) for row in rows]
        names = self.names
        return [make(**dict(zip(names, pick(row), strict=True))) for row in rows]


def _converted(
    row: Sequence[Any], conversions: Sequence[tuple[int, Callable[[Any], Any]]]
) -> list[Any]:
    values = list(row)
    for i, process in conversions:
        if values[i] is not None:
            values[i] = process(values[i])
    return values


def row_builder(row_type: type[RowT], load_keys: tuple[str, ...]) -> RowBuilder[RowT]:
    """Return the (cached) builder of ``row_type`` for a model loading ``load_keys``.

    Raises:
        ConfigurationError: ``row_type`` is neither a dataclass nor a pydantic model,
            or names an attribute the model does not load.
    """
    key = (row_type, load_keys)
    found = _BUILDERS.get(key)
    if found is None:
        names = _field_names(row_type)
        missing = [name for name in names if name not in load_keys]
        if missing:
            raise ConfigurationError(
                f"{row_type.__name__} names {missing}, which the model does not load"
            )
        positions = tuple(load_keys.index(name) for name in names)
        positional = dataclasses.is_dataclass(row_type) and not any(
            f.kw_only for f in dataclasses.fields(row_type) if f.init
        )
        direct = positional and _stores_fields_only(row_type)
        found = _BUILDERS[key] = RowBuilder(row_type, names, positions, positional, direct)
    builder: RowBuilder[RowT] = found
    return builder


_BUILDERS: dict[tuple[type[Any], tuple[str, ...]], RowBuilder[Any]] = {}


def _stores_fields_only(row_type: type[Any]) -> bool:
    # The __init__ dataclasses generated (compiled from source text, so its file is
    # "<string>") stores every field and calls __post_init__ if there is one. With
    # no __post_init__, no InitVar or ClassVar pseudo-fields, every field set by
    # __init__ and instances that keep a __dict__ (no __slots__), storing the
    # values is all it does. Anything else keeps calling __init__.
    init = row_type.__init__
    code = getattr(init, "__code__", None)
    declared = getattr(row_type, "__dataclass_fields__", {})
    fields = dataclasses.fields(row_type)
    return (
        code is not None
        and code.co_filename == "<string>"
        and not hasattr(row_type, "__post_init__")
        and len(declared) == len(fields)
        and all(f.init for f in fields)
        and row_type.__dictoffset__ != 0
        and "__slots__" not in row_type.__dict__
    )


def _field_names(row_type: type[Any]) -> tuple[str, ...]:
    if dataclasses.is_dataclass(row_type):
        return tuple(f.name for f in dataclasses.fields(row_type) if f.init)
    if issubclass(row_type, BaseModel):
        return tuple(row_type.model_fields)
    raise ConfigurationError(f"{row_type.__name__} is neither a dataclass nor a pydantic model")


__all__ = ["RowBuilder", "RowT", "row_builder"]
