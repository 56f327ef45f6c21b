"""The payments platform's commands on the ``tenancy`` command line: ``seed`` and ``demo``.

Registered through the ``tenancy.commands`` entry point group, so the mechanism's
command line carries them without importing the payments domain.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from repositories.demo.seed import format_seed_report, seed_database
from tenancy.cli.command import EXIT_OK, add_database_url, command_settings, positive_int

if TYPE_CHECKING:
    from tenancy.cli.command import Subcommands


def register(subcommands: Subcommands) -> None:
    """Add ``seed`` and ``demo`` to the ``tenancy`` command (the entry point)."""
    _add_seed(subcommands)
    _add_demo(subcommands)


def _add_seed(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "seed", help="fill every tenant table for N organizations, as the app role"
    )
    add_database_url(parser)
    parser.add_argument(
        "--orgs", type=positive_int, default=2, help="number of organizations (default: 2)"
    )
    parser.set_defaults(handler=_seed)


def _seed(args: argparse.Namespace) -> int:
    results = asyncio.run(seed_database(command_settings(args), args.orgs))
    print(format_seed_report(results))
    return EXIT_OK


def _add_demo(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "demo",
        help="show two tenants isolated by RLS on a scratch database, with events through "
        "a broker (bundled unless TENANCY_KAFKA_BOOTSTRAP_SERVERS is set); cleans up after",
    )
    parser.add_argument(
        "--server-url",
        default=None,
        help="superuser URL of the PostgreSQL server (default: $TENANCY_DEMO_SERVER_URL, "
        "then postgresql://postgres@127.0.0.1:5432)",
    )
    parser.set_defaults(handler=_demo, needs_database=False)


def _demo(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the scenario (and the bundled broker).
    from repositories.demo.run import main as run_demo

    return run_demo(args.server_url)
