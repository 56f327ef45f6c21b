"""Composable query specifications: a filter that turns into a SQL where-clause.

Only the filter composes (``&``, ``|``, ``~``); ordering, paging, eager loading and
locking stay with the repository call, so ``count`` applies exactly the filter.
Specifications do no I/O.

A specification can be *prepared* once, with named parameters, and bound per
call::

    NAMED = Specification[Customer](Customer.name.like(bindparam("pattern")))
    rows = await uow.customers.read(CustomerRow, NAMED.bind(pattern="Acme%"))

Building a SQLAlchemy expression and its cache key costs more than running the
cached statement it maps to; a prepared specification keeps one expression,
whose cache key is computed once, and carries only the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, and_, not_, or_, true
from sqlalchemy.sql import Select
from sqlalchemy.sql.visitors import cloned_traverse, iterate

from tenancy.errors import ConfigurationError

ModelT = TypeVar("ModelT")
SelectT = TypeVar("SelectT", bound=Select[Any])

_NO_VALUES: Mapping[str, Any] = MappingProxyType({})


class Specification(Generic[ModelT]):
    """A filter over ``ModelT`` rows, held as one SQLAlchemy boolean clause.

    Criteria on related tables are built as correlated ``EXISTS`` subqueries by
    the per-aggregate constructors, so composing never multiplies rows.
    """

    __slots__ = ("_clause", "_names", "_values")

    def __init__(
        self, clause: ColumnElement[bool], *, parameters: Mapping[str, Any] | None = None
    ) -> None:
        """Hold ``clause``; ``parameters``: values for its named parameters (see ``bind``)."""
        self._clause = clause
        self._values: Mapping[str, Any] = (
            MappingProxyType(dict(parameters)) if parameters else _NO_VALUES
        )
        # The names of the clause's named parameters, found on first ``bind``.
        self._names: frozenset[str] | None = None

    @classmethod
    def all(cls) -> Specification[ModelT]:
        """Return the specification every row satisfies."""
        return cls(true())

    def bind(self, **values: Any) -> Specification[ModelT]:
        """Return this specification with values for its named parameters (``bindparam``).

        The expression is shared, not copied: binding costs a dictionary.

        Raises:
            ConfigurationError: a name is not a parameter of this specification.
        """
        names = self._names
        if names is None:
            names = self._names = frozenset(
                node.key
                for node in iterate(self._clause)
                if isinstance(node, BindParameter) and not node.unique
            )
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigurationError(
                f"{unknown} are not parameters of this specification (it has {sorted(names)})"
            )
        bound: Specification[ModelT] = Specification(
            self._clause, parameters={**self._values, **values}
        )
        bound._names = names  # the same expression: binding again need not walk it
        return bound

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The values bound to named parameters (empty unless ``bind`` was used)."""
        return self._values

    @property
    def expression(self) -> ColumnElement[bool]:
        """The clause as built, without the bound values (``to_clause`` applies them).

        The same object for every ``bind`` of a prepared specification, so its
        cache key is computed once; pair it with ``parameters``.
        """
        return self._clause

    def to_clause(self) -> ColumnElement[bool]:
        """Return the where-clause, with the bound values applied."""
        values = self._values
        if not values:
            return self._clause

        def fill(bind: BindParameter[Any]) -> None:
            if bind.key in values:
                bind.value = values[bind.key]
                bind.required = False

        # A copy with the values set: the prepared expression itself never changes.
        # (ClauseElement.params does the same, deprecated on clauses since 2.1.)
        return cloned_traverse(self._clause, {"maintain_key": True}, {"bindparam": fill})

    def apply(self, statement: SelectT) -> SelectT:
        """Return ``statement`` filtered by this specification."""
        return statement.where(self.to_clause())

    def __and__(self, other: Specification[ModelT]) -> Specification[ModelT]:
        return Specification(and_(self.to_clause(), other.to_clause()))

    def __or__(self, other: Specification[ModelT]) -> Specification[ModelT]:
        return Specification(or_(self.to_clause(), other.to_clause()))

    def __invert__(self) -> Specification[ModelT]:
        return Specification(not_(self.to_clause()))

    def __repr__(self) -> str:
        values = f", {dict(self._values)}" if self._values else ""
        return f"Specification({self._clause}{values})"
