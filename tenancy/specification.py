"""Composable query specifications: a filter that turns into a SQL where-clause.

Only the filter composes (``&``, ``|``, ``~``); ordering, paging, eager loading and
locking stay with the repository call, so ``count`` applies exactly the filter.
Specifications do no I/O.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, not_, or_, true
from sqlalchemy.sql import Select

ModelT = TypeVar("ModelT")
SelectT = TypeVar("SelectT", bound=Select[Any])


class Specification(Generic[ModelT]):
    """A filter over ``ModelT`` rows, held as one SQLAlchemy boolean clause.

    Criteria on related tables are built as correlated ``EXISTS`` subqueries by
    the per-aggregate constructors, so composing never multiplies rows.
    """

    __slots__ = ("_clause",)

    def __init__(self, clause: ColumnElement[bool]) -> None:
        self._clause = clause

    @classmethod
    def all(cls) -> Specification[ModelT]:
        """Return the specification every row satisfies."""
        return cls(true())

    def to_clause(self) -> ColumnElement[bool]:
        """Return the where-clause."""
        return self._clause

    def apply(self, statement: SelectT) -> SelectT:
        """Return ``statement`` filtered by this specification."""
        return statement.where(self._clause)

    def __and__(self, other: Specification[ModelT]) -> Specification[ModelT]:
        return Specification(and_(self._clause, other._clause))

    def __or__(self, other: Specification[ModelT]) -> Specification[ModelT]:
        return Specification(or_(self._clause, other._clause))

    def __invert__(self) -> Specification[ModelT]:
        return Specification(not_(self._clause))

    def __repr__(self) -> str:
        return f"Specification({self._clause})"
