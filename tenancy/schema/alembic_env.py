"""The body of an Alembic ``env.py``: the library's own, and a service's that layers on it.

A service's ``migrations/env.py`` is one call (its models imported first, so that
their tables are on ``tenancy.Base.metadata``)::

    from alembic import context
    from tenancy.schema.alembic_env import run_migrations
    from tenancy.schema.tenant_table import tenant_policies

    import invoicing.models  # noqa: F401

    run_migrations(context, entities=tenant_policies("invoices"))

The library's revisions are their own history, on the ``tenancy`` branch with
``tenancy_``-prefixed ids, recorded in their own version table
(``tenancy_alembic_version``). Before a service's ``alembic upgrade`` applies its
own revisions, the same transaction brings the library's history to its head; a
service therefore has one head of its own, and a new library release adds no
second one. ``alembic check`` compares the database with the library's and the
service's models and with both sets of policies and functions.

The URL comes from ``config.attributes["url"]`` (set by ``tenancy migrate``), from
``-x url=...``, ``sqlalchemy.url``, or the settings (``TENANCY_ADMIN_DATABASE_URL``,
then an explicitly set ``TENANCY_DATABASE_URL``); with none it refuses to run.
Connected as a superuser, it ensures the roles and migrates under ``SET ROLE``
to the owner role, so that every object is owned by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy
from alembic_utils.replaceable_entity import ReplaceableEntity, register_entities
from sqlalchemy import Connection, MetaData, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from tenancy.errors import ConfigurationError
from tenancy.extension import load_models
from tenancy.schema.citus import distribute, library_distribution_plan, propagate_tenant_setting
from tenancy.schema.declarative import Base
from tenancy.schema.policy import entities as library_entities
from tenancy.schema.resources import functions_dir, migrations_dir, policies_dir
from tenancy.schema.roles import (
    ensure_roles,
    grant_database_access,
    is_superuser,
    mark_leakproof_operators,
)
from tenancy.settings import TenancySettings, async_url

#: Where the library's history is recorded; a service's stays in ``alembic_version``.
LIBRARY_VERSION_TABLE = "tenancy_alembic_version"
#: The branch label of the library's revisions (their ids start with ``tenancy_``).
LIBRARY_BRANCH = "tenancy"
#: The default version table, where releases before the split recorded the library.
DEFAULT_VERSION_TABLE = "alembic_version"

Report = Callable[[str], None]


def run_migrations(
    context: EnvironmentContext,
    *,
    target_metadata: MetaData | None = None,
    entities: Iterable[ReplaceableEntity] = (),
    policy_dirs: Sequence[Path] = (),
    function_dirs: Sequence[Path] = (),
    library: bool = False,
) -> None:
    """Run the migrations of the script directory ``context`` describes.

    ``target_metadata`` defaults to ``tenancy.Base.metadata`` with the models of
    every installed package (``tenancy.models`` entry points) loaded. ``entities``
    and the SQL files in ``policy_dirs`` and ``function_dirs`` are the service's
    own policies and functions, kept in step by ``alembic check`` along with the
    library's. ``library=True`` is for the library's own ``env.py`` only.
    """
    _Environment(
        context,
        target_metadata=target_metadata,
        entities=[*entities, *_entities_from(policy_dirs, function_dirs)],
        library=library,
    ).run()


def _entities_from(
    policy_dirs: Sequence[Path], function_dirs: Sequence[Path]
) -> list[ReplaceableEntity]:
    from tenancy.schema.policy import functions_from_dir, policies_from_dir

    found: list[ReplaceableEntity] = []
    for directory in function_dirs:
        found.extend(functions_from_dir(directory))
    for directory in policy_dirs:
        found.extend(policies_from_dir(directory))
    return found


class _Environment:
    """One run of an ``env.py``: settings, URL, roles, entities, then the revisions."""

    def __init__(
        self,
        context: EnvironmentContext,
        *,
        target_metadata: MetaData | None,
        entities: list[ReplaceableEntity],
        library: bool,
    ) -> None:
        self.context = context
        self.config = context.config
        self.settings: TenancySettings = self.config.attributes.get("settings") or TenancySettings()
        self.roles = self.settings.role_names()
        # The revisions read the role names from here (tenancy.schema.migration).
        self.config.attributes["roles"] = self.roles
        self.report: Report = self.config.attributes.get("report") or (lambda _line: None)
        self.x_args = context.get_x_argument(as_dictionary=True)
        load_models()
        self.metadata = target_metadata if target_metadata is not None else Base.metadata
        self.library = library
        self.version_table = LIBRARY_VERSION_TABLE if library else DEFAULT_VERSION_TABLE
        # `-x entities=off` compares tables only: for generating a revision whose
        # tables the SQL entities refer to but which do not exist yet.
        if self.x_args.get("entities") != "off":
            # Only policies and functions are managed as entities; grants are
            # written in migrations, and alembic-utils would propose dropping them.
            register_entities(
                [*self._library_entities(), *entities], entity_types=[PGPolicy, PGFunction]
            )

    def _library_entities(self) -> list[ReplaceableEntity]:
        policies = self.config.attributes.get("policies_dir") or self.x_args.get("policies_dir")
        functions = self.config.attributes.get("functions_dir") or self.x_args.get("functions_dir")
        return library_entities(
            Path(policies) if policies else policies_dir(),
            Path(functions) if functions else functions_dir(),
        )

    def run(self) -> None:
        if self.context.is_offline_mode():
            self.context.configure(
                url=self._url(),
                target_metadata=self.metadata,
                literal_binds=True,
                version_table=self.version_table,
            )
            with self.context.begin_transaction():
                self.context.run_migrations()
            return
        asyncio.run(self._run_async())

    async def _run_async(self) -> None:
        engine = create_async_engine(self._url(), poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(self._run)
                await connection.commit()
        finally:
            await engine.dispose()

    def _run(self, connection: Connection) -> None:
        # `tenancy current` only reads the version table: it must change no role.
        if not self.config.attributes.get("inspect_only"):
            self._prepare(connection)
            adopt_unsplit_history(connection)
        self.context.configure(
            connection=connection,
            target_metadata=self.metadata,
            compare_type=True,
            include_object=_include_object,
            transaction_per_migration=False,
            on_version_apply=self._report_step,
            version_table=self.version_table,
        )
        with self.context.begin_transaction():
            if not self.library and self._is_upgrade():
                self._upgrade_library(connection)
            self.context.run_migrations()
            if self._is_upgrade() and not self.config.attributes.get("inspect_only"):
                # On a Citus coordinator: distribute what the revisions created.
                self._report_all(distribute(connection, library_distribution_plan(connection)))

    def _is_upgrade(self) -> bool:
        if self.config.attributes.get("upgrade_library"):
            return True
        # The command alembic runs (`alembic upgrade`) is the function it passed in.
        command = self.context.get_context().opts.get("fn")
        return getattr(command, "__name__", "") == "upgrade"

    def _upgrade_library(self, connection: Connection) -> None:
        """Bring the library's history to its head, in the service's transaction."""
        script = ScriptDirectory(str(migrations_dir()))

        def to_head(revision: Any, _context: MigrationContext) -> Any:
            # What `alembic upgrade heads` computes (alembic.command.upgrade).
            return script._upgrade_revs("heads", revision)

        library = MigrationContext.configure(
            connection,
            opts={
                "fn": to_head,
                "script": script,
                "version_table": LIBRARY_VERSION_TABLE,
                "transaction_per_migration": False,
                "on_version_apply": [self._report_step],
            },
        )
        with Operations.context(library):
            library.run_migrations()

    def _url(self) -> str:
        url = (
            self.config.attributes.get("url")
            or self.x_args.get("url")
            or self.config.get_main_option("sqlalchemy.url")
            or self.settings.admin_database_url
            # Only a URL someone set: the built-in default is the app role's.
            or (
                self.settings.database_url
                if "database_url" in self.settings.model_fields_set
                else None
            )
        )
        if not url:
            raise ConfigurationError(
                "no database URL: set TENANCY_ADMIN_DATABASE_URL or pass -x url=..."
            )
        return async_url(url).render_as_string(hide_password=False)

    def _report_all(self, lines: list[str]) -> None:
        for line in lines:
            self.report(line)

    def _report_step(
        self,
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        if step.up_revision_id is None:
            return
        script = ctx.opts.get("script") or self.context.script
        revision = script.get_revision(step.up_revision_id)
        doc = (revision.doc or "").splitlines()[0] if revision and revision.doc else ""
        verb = "applied" if step.is_upgrade else "reverted"
        self.report(f"{verb} {step.up_revision_id}: {doc}".rstrip(": "))

    def _prepare(self, connection: Connection) -> None:
        if is_superuser(connection):
            for line in ensure_roles(connection, self.settings):
                self.report(line)
            mark_leakproof_operators(connection)
            self._report_all(propagate_tenant_setting(connection))
            connection.exec_driver_sql(f"SET ROLE {self.roles.quoted().owner}")
            connection.commit()
            return
        # Migrating as the app role would fail half-way on the first DDL, or
        # worse, leave objects owned by a role that must own nothing.
        user, owns_database = connection.execute(
            text(
                "SELECT session_user, pg_get_userbyid(datdba) = session_user "
                "FROM pg_database WHERE datname = current_database()"
            )
        ).one()
        if user != self.roles.owner:
            raise ConfigurationError(
                f"migrations need an owner ({self.roles.owner}) or superuser URL; "
                f"connected as {user}"
            )
        if owns_database:
            # A database created for the owner role: it grants the others their access.
            grant_database_access(connection, self.roles)
            self._report_all(propagate_tenant_setting(connection))
            connection.commit()


def adopt_unsplit_history(connection: Connection) -> None:
    """Move a pre-split library revision (``0009`` in ``alembic_version``) to its own table.

    Releases before the split recorded bare ids (``0001``…) in ``alembic_version``;
    the same revisions are now ``tenancy_0001``… in ``tenancy_alembic_version``.
    Runs once, in the migration's transaction; a no-op afterwards.
    """
    tables = set(
        connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
    )
    if DEFAULT_VERSION_TABLE not in tables or LIBRARY_VERSION_TABLE in tables:
        return
    found = connection.execute(text(f"SELECT version_num FROM {DEFAULT_VERSION_TABLE}")).scalars()
    old = [v for v in found if v.isdigit() and len(v) == 4]
    if not old:
        return
    connection.execute(
        text(
            f"CREATE TABLE {LIBRARY_VERSION_TABLE} (version_num varchar(32) NOT NULL, "
            f"CONSTRAINT {LIBRARY_VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )
    for version in old:
        connection.execute(
            text(f"INSERT INTO {LIBRARY_VERSION_TABLE} VALUES (:v)"),
            {"v": f"{LIBRARY_BRANCH}_{version}"},
        )
        connection.execute(
            text(f"DELETE FROM {DEFAULT_VERSION_TABLE} WHERE version_num = :v"),
            {"v": version},
        )
    remaining = connection.execute(
        text(f"SELECT count(*) FROM {DEFAULT_VERSION_TABLE}")
    ).scalar_one()
    if remaining == 0:
        # Only the library was recorded there; a service's own history starts afresh.
        connection.execute(text(f"DROP TABLE {DEFAULT_VERSION_TABLE}"))
    connection.commit()


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # The version tables are Alembic's, not the models'.
    return not (type_ == "table" and name in (DEFAULT_VERSION_TABLE, LIBRARY_VERSION_TABLE))
