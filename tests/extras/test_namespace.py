"""One namespace: the library claims only ``tenancy`` and ``repositories``, and loads lazily.

Each check runs in a fresh interpreter, from a directory that looks like a
service (its own top-level ``models`` package), with the checkout on the path
only after the service's own directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]
HEAVY = ("sqlalchemy", "asyncpg", "pydantic", "pydantic_settings", "alembic", "repositories")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"},
        check=False,
    )


def _service(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    (models / "__init__.py").write_text('Base = "the service\'s own Base"\n')
    return tmp_path


def test_a_service_models_package_is_its_own_after_importing_the_library(tmp_path: Path) -> None:
    result = _python(
        """
        import repositories, tenancy.db.database, tenancy.cli.command
        from tenancy.extension import load_models
        load_models()
        from models import Base
        print(Base)
        """,
        _service(tmp_path),
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "the service's own Base"


def test_the_pytest_plugin_imports_nothing_of_the_library_until_enabled(tmp_path: Path) -> None:
    result = _python(
        f"""
        import sys
        import tenancy.testing.plugin
        print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_package_exports_resolve_on_first_use(tmp_path: Path) -> None:
    result = _python(
        """
        import sys
        import tenancy
        before = "sqlalchemy" in sys.modules
        print(before, tenancy.Database.__module__, tenancy.__version__ != "")
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "tenancy.db.database", "True"]


def test_an_unknown_export_is_an_attribute_error(tmp_path: Path) -> None:
    result = _python("import tenancy; tenancy.NoSuchThing", tmp_path)

    assert result.returncode == 1
    assert "has no attribute 'NoSuchThing'" in result.stderr
