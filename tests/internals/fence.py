"""Find uses of SQLAlchemy's and asyncpg's private APIs in source files (an AST walk).

A private API is a module of theirs whose path has a private part or is one of
their internal modules, a private name imported from them, or a private
attribute (one of the underscore names their own source defines) read or set
on anything but the code's own ``self``, ``cls`` or ``super()``. Inside a class
that extends one of theirs, ``self._name`` counts too.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEPENDENCIES = ("sqlalchemy", "asyncpg")

#: Their modules that are implementation, not API (public names live elsewhere).
INTERNAL_MODULES = (
    "sqlalchemy.util",
    "sqlalchemy.orm.state",
    "sqlalchemy.orm.identity",
    "sqlalchemy.orm.instrumentation",
    "sqlalchemy.orm.loading",
    "sqlalchemy.sql.compiler",
    "sqlalchemy.engine.default",
    "sqlalchemy.connectors",
    "asyncpg.protocol",
    "asyncpg.connect_utils",
    "asyncpg.connresource",
)

#: Underscore names of this project's own that one of its objects calls on another.
OWN_PRIVATE_NAMES = frozenset(
    {
        "_release",  # AsyncRepository._release, called by the unit of work at exit
    }
)


@dataclass(frozen=True)
class Use:
    """One use of a private API: where, and what."""

    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@cache
def dependency_private_names() -> frozenset[str]:
    """Return every underscore name SQLAlchemy's and asyncpg's own source defines."""
    names: set[str] = set()
    for package in DEPENDENCIES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{package} is not installed")
        for path in Path(spec.origin).parent.rglob("*.py"):
            names.update(_defined_private_names(ast.parse(path.read_text(encoding="utf-8"))))
    return frozenset(names)


def _defined_private_names(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            candidates = [node.name]
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            candidates = [node.attr]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            candidates = [node.id]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            candidates = [node.value]  # __slots__ entries, getattr names
        else:
            continue
        yield from (name for name in candidates if _is_private(name))


def _is_dependency(module: str) -> bool:
    return module.split(".")[0] in DEPENDENCIES


def _private_module(module: str) -> bool:
    if any(_is_private(part) for part in module.split(".")):
        return True
    return any(module == m or module.startswith(m + ".") for m in INTERNAL_MODULES)


def private_uses(path: Path) -> list[Use]:
    """Return the uses of a dependency's private API in the Python file ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = dependency_private_names()
    extends_dependency = _classes_extending_dependency(tree)
    uses: list[Use] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_dependency(alias.name) and _private_module(alias.name):
                    uses.append(Use(path, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module and _is_dependency(node.module):
            if _private_module(node.module):
                uses.append(Use(path, node.lineno, f"from {node.module} import ..."))
            for alias in node.names:
                if _is_private(alias.name):
                    uses.append(Use(path, node.lineno, f"from {node.module} import {alias.name}"))
    for owner, node in _attributes(tree):
        name = node.attr
        if not _is_private(name) or name not in private or name in OWN_PRIVATE_NAMES:
            continue
        if _is_own(node.value) and owner not in extends_dependency:
            continue
        uses.append(Use(path, node.lineno, f"{ast.unparse(node)}"))
    return uses


def _is_own(value: ast.expr) -> bool:
    if isinstance(value, ast.Name):
        return value.id in {"self", "cls"}
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def _attributes(tree: ast.AST) -> Iterator[tuple[str | None, ast.Attribute]]:
    # Each attribute node with the name of the class whose body holds it, if any.
    def visit(node: ast.AST, owner: str | None) -> Iterator[tuple[str | None, ast.Attribute]]:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.ClassDef) else owner
            if isinstance(child, ast.Attribute):
                yield owner, child
            yield from visit(child, inner)

    return visit(tree, None)


def _classes_extending_dependency(tree: ast.AST) -> set[str]:
    # Names bound by ``import``/``from ... import`` of a dependency, then classes
    # whose bases mention one of them (``asyncpg.Connection``, ``Session``).
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(
                (a.asname or a.name).split(".")[0] for a in node.names if _is_dependency(a.name)
            )
        elif isinstance(node, ast.ImportFrom) and node.module and _is_dependency(node.module):
            imported.update(a.asname or a.name for a in node.names)
    extending = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = base
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in imported:
                    extending.add(node.name)
    return extending
