"""What installed packages add to the library: their models and their commands.

A package declares them as entry points, so the mechanism finds them without
importing any of them by name:

    [project.entry-points."tenancy.models"]
    acme = "acme.models"            # a module that defines ORM models on tenancy's Base

    [project.entry-points."tenancy.commands"]
    acme = "acme.cli:register"      # register(subcommands) adds parsers to ``tenancy``

The models are what ``alembic check``, the audit and the isolation checks
compare the database with; the payments platform shipped in this wheel is one
such package (``repositories``).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

MODELS_GROUP = "tenancy.models"
COMMANDS_GROUP = "tenancy.commands"

CommandRegistration = Callable[["argparse._SubParsersAction[Any]"], None]


@cache
def load_models() -> tuple[str, ...]:
    """Import every module named in the ``tenancy.models`` group; return their names.

    Importing a models module registers its tables on ``tenancy``'s ``Base.metadata``.
    """
    names = tuple(sorted(ep.value for ep in entry_points(group=MODELS_GROUP)))
    for name in names:
        importlib.import_module(name)
    return names


def command_registrations() -> list[CommandRegistration]:
    """Return the ``register(subcommands)`` callables of the ``tenancy.commands`` group."""
    found = sorted(entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name)
    return [ep.load() for ep in found]
