"""Nothing outside ``tenancy.internals`` touches a private SQLAlchemy or asyncpg API."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.internals.fence import dependency_private_names, private_uses

ROOT = Path(__file__).resolve().parents[2]
FENCE = ROOT / "tenancy" / "internals"


def _sources() -> list[Path]:
    files = [*(ROOT / "tenancy").rglob("*.py"), *(ROOT / "repositories").rglob("*.py")]
    return sorted(p for p in files if FENCE not in p.parents)


def test_no_private_api_is_used_outside_the_fence() -> None:
    uses = [str(use) for path in _sources() for use in private_uses(path)]
    assert uses == []


def test_the_fence_imports_nothing_of_the_project() -> None:
    # It sits below every layer, so it can serve each of them.
    imported = []
    for path in FENCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.append(node.module)
            elif isinstance(node, ast.Import):
                imported.extend(alias.name for alias in node.names)
    project = [m for m in imported if m.split(".")[0] in {"tenancy", "repositories"}]
    assert all(m.startswith("tenancy.internals") for m in project), project


def test_the_check_finds_a_private_attribute(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("def f(state):\n    state._commit_all({})\n")
    assert [use.what for use in private_uses(source)] == ["state._commit_all"]


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "from sqlalchemy.util import greenlet_spawn\n"
        "from sqlalchemy.orm import _mapper_registries\n"
    )
    assert [use.what for use in private_uses(source)] == [
        "from sqlalchemy.util import ...",
        "from sqlalchemy.orm import _mapper_registries",
    ]


def test_the_check_finds_self_access_in_a_subclass_of_theirs(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import asyncpg\nclass C(asyncpg.Connection):\n    def f(self):\n"
        "        return self._protocol\n"
    )
    assert [use.what for use in private_uses(source)] == ["self._protocol"]


def test_the_check_leaves_the_project_own_self_access_alone(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("class C:\n    def f(self):\n        return self._connection\n")
    assert private_uses(source) == []


def test_the_vocabulary_holds_their_private_names() -> None:
    names = dependency_private_names()
    assert {"_commit_all", "_generate_cache_key", "_bind_processors", "_protocol"} <= names
