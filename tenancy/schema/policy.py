"""Build alembic-utils entities (policies, functions) from the SQL files."""

from __future__ import annotations

import re
from pathlib import Path

from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy
from alembic_utils.replaceable_entity import ReplaceableEntity

# A statement ends at a semicolon that closes a line; function bodies are
# dollar-quoted and hold no line ending in ';' outside their own statement.
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_COMMENT = re.compile(r"^\s*--.*$", re.MULTILINE)


def split_statements(sql: str) -> list[str]:
    """Split a policy file into its statements, comments removed."""
    body = _COMMENT.sub("", sql)
    return [s.strip() for s in _STATEMENT_END.split(body) if s.strip()]


def policies_from_dir(directory: Path) -> list[PGPolicy]:
    """Return every policy declared in ``directory``'s ``*.sql`` files, sorted by file."""
    return [
        PGPolicy.from_sql(statement)
        for path in sorted(directory.glob("*.sql"))
        for statement in split_statements(path.read_text())
    ]


def functions_from_dir(directory: Path) -> list[PGFunction]:
    """Return every function declared in ``directory``'s ``*.sql`` files."""
    # A function body may contain ';' at line ends, so each file holds one function.
    return [
        PGFunction.from_sql(_COMMENT.sub("", path.read_text()).strip().rstrip(";"))
        for path in sorted(directory.glob("*.sql"))
    ]


def entities(policies: Path, functions: Path) -> list[ReplaceableEntity]:
    """Return all entities Alembic should keep in step with the SQL files."""
    return [*functions_from_dir(functions), *policies_from_dir(policies)]
