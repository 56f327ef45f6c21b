"""The library comes from its wheel, claims two names only, and leaves ``models`` to us."""

from __future__ import annotations

from importlib.metadata import files
from pathlib import Path

import models

import tenancy

SERVICE_DIR = Path(__file__).resolve().parents[1]


def test_the_library_is_the_installed_wheel_not_a_checkout() -> None:
    installed = Path(tenancy.__file__).resolve()

    assert "site-packages" in installed.parts
    assert (installed.parent / "_bundled" / "migrations").is_dir()


def test_the_wheel_installs_only_the_tenancy_and_repositories_packages() -> None:
    modules = {
        path.parts[0] for path in files("tenancy") or [] if path.suffix == ".py" and path.parts
    }

    assert modules == {"tenancy", "repositories"}


def test_models_is_this_services_own_module() -> None:
    assert Path(models.__file__).resolve() == SERVICE_DIR / "models.py"
