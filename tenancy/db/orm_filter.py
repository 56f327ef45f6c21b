"""The ORM-level second layer: the tenant criterion added to every ORM query of tenant models.

Row-level security in Postgres is the boundary; this layer is a seatbelt above
it. A ``do_orm_execute`` listener adds ``org_id = <the session's tenant>`` to
ORM SELECT, UPDATE and DELETE statements for every tenant-owned model (and
``id = <tenant>`` for the tenants' own table, marked ``__tenant_root__``) through
``with_loader_criteria``, which also reaches joins, aliases, subquery entities and
relationship loads. It keeps
isolation if a policy is dropped by mistake or the app connects as a role that
bypasses RLS, and it lets the planner use the ``org_id``-led indexes.

The value comes from the session's own tenant (``session.info``), the same one
``SET LOCAL`` writes, never from the ambient context, so both layers always
agree. It is a bind parameter: the lambda's closure variable is extracted as a
parameter, so statements stay cached across tenants.

Installing is an explicit call on a ``Session`` class; nothing happens at import.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from tenancy.context import session_tenant
from tenancy.db.session import JoinedSession, TenantSession
from tenancy.schema.declarative import Base, TenantOwned, is_tenant_owned, is_tenant_root


class _Applied:
    """The marker value: only this module can produce it."""

    def __repr__(self) -> str:
        return "<tenant criteria applied>"


#: Execution option a statement carries once the criteria were added (so a statement
#: re-executed by the ORM is not filtered twice). Its value is a private sentinel,
#: compared by identity: a caller's ``execution_options(_tenancy_tenant_filter=True)``
#: cannot switch the filter off.
_APPLIED_OPTION = "_tenancy_tenant_filter"
_APPLIED = _Applied()


def tenant_roots() -> tuple[type[Any], ...]:
    """Return the classes the criterion is attached to.

    ``TenantOwned`` covers every model using the mixin, including a service's own
    models; tenant-owned models that declare ``org_id`` themselves (memberships)
    are listed one by one. Read from the registry when called, not at import.
    """
    others = sorted(
        (
            m.class_
            for m in Base.registry.mappers
            if is_tenant_owned(m.class_) and not issubclass(m.class_, TenantOwned)
        ),
        key=lambda cls: cls.__name__,
    )
    return (TenantOwned, *others)


def tenant_tables() -> tuple[type[Any], ...]:
    """Return the models marked ``__tenant_root__`` (the organizations), read when called."""
    return tuple(
        sorted(
            (m.class_ for m in Base.registry.mappers if is_tenant_root(m.class_)),
            key=lambda cls: cls.__name__,
        )
    )


def tenant_criteria(org_id: uuid.UUID, roots: tuple[type[Any], ...]) -> list[Any]:
    """Return the loader options restricting ``roots`` and the tenants' table to ``org_id``."""
    options: list[Any] = [
        with_loader_criteria(root, lambda cls: cls.org_id == org_id, include_aliases=True)
        for root in roots
    ]
    options.extend(
        with_loader_criteria(table, lambda cls: cls.id == org_id, include_aliases=True)
        for table in tenant_tables()
    )
    return options


class FilteredTenantSession(TenantSession):
    """A ``TenantSession`` whose ORM statements also carry the tenant criterion.

    The listener is installed by ``filtered_session_class()``, not at import.
    """


class FilteredJoinedSession(JoinedSession):
    """A unit of work's joined session whose ORM statements also carry the tenant criterion."""


def filtered_session_class() -> type[TenantSession]:
    """Return the session class to use when ``settings.orm_tenant_filter`` is on."""
    install_tenant_filter(FilteredTenantSession)
    return FilteredTenantSession


def filtered_joined_session_class() -> type[JoinedSession]:
    """Return the unit of work's session class to use when ``orm_tenant_filter`` is on."""
    install_tenant_filter(FilteredJoinedSession)
    return FilteredJoinedSession


def install_tenant_filter(session_class: type[Session]) -> None:
    """Add the tenant criterion to ORM statements run by sessions of ``session_class``.

    Use ``TenantSession`` or a subclass: the tenant is read from each session's
    ``info``. Installing twice on one class is a no-op.

    Raises:
        TenantContextRequired: (at query time) a session of the class has no tenant.
    """
    if not is_tenant_filter_installed(session_class):
        event.listen(session_class, "do_orm_execute", add_tenant_criteria)


def is_tenant_filter_installed(session_class: type[Session]) -> bool:
    """Return whether the tenant filter listens on ``session_class``."""
    return event.contains(session_class, "do_orm_execute", add_tenant_criteria)


def add_tenant_criteria(state: ORMExecuteState) -> None:
    """Add the tenant criteria to an ORM SELECT, UPDATE or DELETE (the listener)."""
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # Relationship and column loads inherit the criteria of the statement that
    # loaded their parent: SQLAlchemy propagates with_loader_criteria to them.
    if state.is_column_load or state.is_relationship_load:
        return
    if state.execution_options.get(_APPLIED_OPTION) is _APPLIED:
        return
    org_id = session_tenant(state.session)
    state.statement = state.statement.options(*tenant_criteria(org_id, tenant_roots()))
    state.update_execution_options(**{_APPLIED_OPTION: _APPLIED})
