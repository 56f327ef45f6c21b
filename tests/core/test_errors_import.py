"""The error hierarchy imports no driver: translation lives in ``tenancy.error_translation``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_error_hierarchy_loads_neither_sqlalchemy_nor_asyncpg() -> None:
    code = (
        "import sys, tenancy.errors\n"
        "print(sorted(m for m in ('asyncpg', 'sqlalchemy') if m in sys.modules))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert found.stdout.strip() == "[]"


def test_the_translation_is_offered_by_the_error_module() -> None:
    from tenancy import error_translation, errors

    assert errors.translate is error_translation.translate
    assert errors.translated is error_translation.translated
