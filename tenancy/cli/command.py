"""The ``tenancy`` command: parse arguments and dispatch; the work lives in other modules.

Exit codes: 0 success, 1 error (the message goes to stderr, no traceback),
2 usage error, 3 the audit found gaps (so CI can gate on ``tenancy audit``).
The isolation checks (``audit``, ``security-check``) exit 2 whenever they cannot
run: an unreachable database, an unknown app role, or no tenant table to check.

Adding a subcommand takes one function and one line: write ``_add_<name>`` that
adds its parser (call ``add_database_url`` if it needs the database) and sets
``handler``, then list it in ``SUBCOMMANDS``. A handler receives the parsed
arguments and returns the exit code; ``main`` turns expected errors into messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from tenancy.audit.database_audit import audit_database
from tenancy.audit.report_format import format_report
from tenancy.cli.isolation_options import add_isolation_options, isolation_config
from tenancy.errors import ConfigurationError, TenancyError, translate
from tenancy.extension import command_registrations
from tenancy.schema.migration import current, downgrade, history, upgrade
from tenancy.settings import APP_ROLE, TenancySettings
from tenancy.version import installed_version

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GAPS = 3
#: The isolation checks could not run (same code as a usage error: nothing was judged).
EXIT_NOT_RUN = 2

URL_VARIABLES = ("TENANCY_ADMIN_DATABASE_URL", "TENANCY_DATABASE_URL")
NO_URL = "tenancy: error: no database URL: pass --database-url or set TENANCY_ADMIN_DATABASE_URL\n"

Handler = Callable[[argparse.Namespace], int]


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """Add ``--database-url``, defaulting to the first of ``URL_VARIABLES`` that is set.

    There is no built-in default: ``main`` refuses a command that needs the
    database and has no URL (one line, exit 2), rather than reach for a URL that
    nobody configured.
    """
    default = next((os.environ[name] for name in URL_VARIABLES if os.environ.get(name)), None)
    parser.add_argument(
        "--database-url",
        default=default,
        help="owner or superuser URL (default: $TENANCY_ADMIN_DATABASE_URL, "
        "then $TENANCY_DATABASE_URL); the app role's URL is derived from it",
    )


def command_settings(args: argparse.Namespace) -> TenancySettings:
    """Return settings whose admin URL is ``--database-url`` and app URL the app role's.

    Passwords and pool options still come from the ``TENANCY_*`` environment.

    Raises:
        ConfigurationError: no URL, a malformed one, or invalid ``TENANCY_*`` settings.
    """
    url: str | None = args.database_url
    if not url:
        raise ConfigurationError("no database URL: pass --database-url")
    try:
        base = TenancySettings(admin_database_url=url)
        app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    except (ValueError, ArgumentError) as exc:
        # pydantic's ValidationError is a ValueError; so is a non-Postgres URL.
        raise ConfigurationError(f"invalid database settings: {exc}") from exc
    return base.model_copy(update={"database_url": app_url})


def add_alembic_config(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``: a service's ``alembic.ini`` (default: ``./alembic.ini`` if present)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("alembic.ini") if Path("alembic.ini").is_file() else None,
        help="a service's alembic.ini, whose revisions layer on the library's "
        "(default: ./alembic.ini if present, else the library's own revisions)",
    )


def _add_migrate(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "migrate", help="create the roles, then migrate schema and policies (alembic upgrade)"
    )
    add_database_url(parser)
    add_alembic_config(parser)
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    upgrade(
        settings.admin_url(),
        args.revision,
        settings=settings,
        report=print,
        config_file=args.config,
    )
    print(f"migrated {_shown(settings)} to {args.revision}")
    return EXIT_OK


def _add_downgrade(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "downgrade", help="downgrade schema and policies to REVISION (roles are kept)"
    )
    add_database_url(parser)
    add_alembic_config(parser)
    parser.add_argument("revision", metavar="REVISION", help="target revision, or base")
    parser.set_defaults(handler=_downgrade)


def _downgrade(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    downgrade(
        settings.admin_url(),
        args.revision,
        settings=settings,
        report=print,
        config_file=args.config,
    )
    print(f"downgraded {_shown(settings)} to {args.revision}")
    return EXIT_OK


def _add_current(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser("current", help="print the revision the database is at")
    add_database_url(parser)
    add_alembic_config(parser)
    parser.set_defaults(handler=_current)


def _current(args: argparse.Namespace) -> int:
    revisions = current(command_settings(args).admin_url(), config_file=args.config)
    print("\n".join(revisions) if revisions else "base (not migrated)")
    return EXIT_OK


def _add_history(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser("history", help="list the shipped revisions, oldest first")
    parser.set_defaults(handler=_history, needs_database=False)


def _history(args: argparse.Namespace) -> int:
    for revision, title in history():
        print(f"{revision}  {title}")
    return EXIT_OK


def _add_audit(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "audit", help="check RLS, policies, keys and roles; exit 3 on any gap"
    )
    add_database_url(parser)
    add_isolation_options(parser)
    parser.set_defaults(handler=_audit, failure_exit=EXIT_NOT_RUN)


def _audit(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    config = isolation_config(args)
    if args.app_role is None and config.app_role == APP_ROLE:
        # The deployment's own app role (TENANCY_APP_ROLE) unless configured.
        config = config.with_options(app_role=settings.role_names().app)
    report = asyncio.run(audit_database(settings, config))
    print(format_report(report))
    if report.app_role_missing or report.checked_nothing:
        why = "the app role does not exist" if report.app_role_missing else "no tenant table"
        print(f"tenancy: audit could not run: {why}", file=sys.stderr)
        return EXIT_NOT_RUN
    return EXIT_OK if report.ok else EXIT_GAPS


def _add_relay(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "relay",
        help="publish committed outbox events to Kafka/Redpanda until SIGTERM "
        "(broker and relay options from TENANCY_KAFKA_* / TENANCY_RELAY_*); "
        "with a subcommand, inspect or unblock the outbox",
    )
    add_database_url(parser)
    parser.set_defaults(handler=_relay)
    actions = parser.add_subparsers(title="operator commands", metavar="ACTION")
    for name, handler, help_text in (
        ("status", _relay_status, "print the backlog, dead events and blocked aggregates"),
        ("requeue", _relay_requeue, "send a dead event again; its aggregate resumes"),
        (
            "discard",
            _relay_discard,
            "give a dead event up (never published); its aggregate resumes",
        ),
    ):
        action = actions.add_parser(name, help=help_text)
        # SUPPRESS: given after the action it counts, and otherwise the relay's stays.
        action.add_argument("--database-url", default=argparse.SUPPRESS, help="as for relay")
        if name != "status":
            action.add_argument("event_id", type=uuid.UUID, metavar="EVENT_ID")
        action.set_defaults(handler=handler)


def _relay(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the Kafka client.
    from tenancy.relay.worker import run_relay

    asyncio.run(run_relay(command_settings(args)))
    return EXIT_OK


def _relay_status(args: argparse.Namespace) -> int:
    from tenancy.relay.admin import open_relay_admin
    from tenancy.relay.admin_format import format_status

    async def status() -> str:
        async with open_relay_admin(command_settings(args)) as admin:
            return format_status(await admin.status())

    print(asyncio.run(status()))
    return EXIT_OK


def _relay_requeue(args: argparse.Namespace) -> int:
    return _settle_dead(args, "requeue")


def _relay_discard(args: argparse.Namespace) -> int:
    return _settle_dead(args, "discard")


def _settle_dead(args: argparse.Namespace, action: Literal["requeue", "discard"]) -> int:
    from tenancy.relay.admin import DeadEvent, open_relay_admin

    async def settle() -> DeadEvent:
        async with open_relay_admin(command_settings(args)) as admin:
            if action == "requeue":
                return await admin.requeue(args.event_id)
            return await admin.discard(args.event_id)

    event = asyncio.run(settle())
    done = "requeued" if action == "requeue" else "discarded"
    print(
        f"{done} event {event.id} ({event.event_type}) of {event.aggregate_type} "
        f"{event.aggregate_id}, org {event.org_id}; the aggregate resumes"
    )
    return EXIT_OK


def _add_security_check(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "security-check",
        help="run the table-level isolation checks against a migrated database "
        "(superuser URL; nothing is left behind); exit 3 on any failure, 2 if it cannot run",
    )
    add_database_url(parser)
    add_isolation_options(parser)
    parser.add_argument(
        "--global-unique",
        action="append",
        default=[],
        metavar="INDEX",
        help="a unique index of your own tables that is a global token (repeatable)",
    )
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help="probe even while other sessions work in the database (the probes take locks)",
    )
    parser.add_argument(
        "--fixtures",
        choices=("auto", "rolled-back", "committed"),
        default="auto",
        help="how the probe holds its rows: rolled back in one transaction, or committed and "
        "deleted afterwards (needed on Citus); default: committed on a Citus coordinator",
    )
    parser.set_defaults(handler=_security_check, failure_exit=EXIT_NOT_RUN)


def _security_check(args: argparse.Namespace) -> int:
    from tenancy.testing.security_check import run

    config = isolation_config(args)
    return run(
        args.database_url,
        config,
        global_unique=args.global_unique,
        allow_busy=args.allow_busy,
        fixtures=args.fixtures,
    )


#: One registration per subcommand, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Callable[[Subcommands], None], ...] = (
    _add_migrate,
    _add_downgrade,
    _add_current,
    _add_history,
    _add_audit,
    _add_relay,
    _add_security_check,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="tenancy", description="Postgres row-level-security multi-tenant data layer"
    )
    parser.add_argument("--version", action="version", version=f"tenancy {installed_version()}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    # The commands of installed extensions (entry point group ``tenancy.commands``)
    # follow the library's own.
    for register in (*SUBCOMMANDS, *command_registrations()):
        register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tenancy`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    if getattr(args, "needs_database", True) and not getattr(args, "database_url", None):
        parser.exit(EXIT_USAGE, NO_URL)
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader of our output went away (`tenancy audit | head`): not a failure
        # of the command. Point stdout at devnull so the exit flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (TenancyError, CommandError, DBAPIError, OSError) as exc:
        # Expected failures (unreachable database, refused migration, bad settings)
        # end in one line on stderr; anything else is a bug and keeps its traceback.
        print(f"tenancy: error: {_describe(exc)}{_target(args)}", file=sys.stderr)
        failure: int = getattr(args, "failure_exit", EXIT_ERROR)
        return failure


def _describe(exc: BaseException) -> str:
    translated = translate(exc)
    if translated is not None:
        return str(translated)
    if isinstance(exc, DBAPIError):
        # Only the driver's first line: the full text repeats the statement, which
        # for role setup can hold a password.
        return (
            f"database error: {str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__}"
        )
    return str(exc) or type(exc).__name__


def _target(args: argparse.Namespace) -> str:
    url: str | None = getattr(args, "database_url", None)
    if not url:
        return ""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return ""
    return f" [{shown}]"


def positive_int(value: str) -> int:
    """Parse a command-line count of at least 1 (an ``argparse`` type)."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _shown(settings: TenancySettings) -> str:
    return settings.admin_url().render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
