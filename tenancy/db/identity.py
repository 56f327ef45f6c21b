"""Identity adoption: instances built from rows join an ORM session without SQL.

The hot paths (get, list, add) run on the driver connection and never need the
session's SQL, only its identity map: the instances they build are adopted into
it the way SQLAlchemy's loader puts rows there, so one row is one object within
a transaction and changes to it are flushed at commit. A unit of work's session
is therefore created lazily and unbound (``IdentityMap``), and bound to its Core
connection only when it must run SQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from tenancy.context import TENANT_KEY
from tenancy.db.session import JoinedSession
from tenancy.internals import adopt_unchanged
from tenancy.schema.declarative import EVENT_HOLDERS_KEY


class IdentityMap:
    """The lazily created ORM session of one unit of work, and the aggregates it holds."""

    def __init__(self, org_id: uuid.UUID, session_class: type[JoinedSession]) -> None:
        self._org_id = org_id
        self._session_class = session_class
        self._session: AsyncSession | None = None
        # Aggregates with pending events, held until commit (see adopt_all).
        self.held: dict[int, Any] = {}

    @property
    def current(self) -> AsyncSession | None:
        """The session, if one was created in this transaction."""
        return self._session

    def open(self, bind: AsyncConnection | None) -> AsyncSession:
        """Return the session, created now (bound to ``bind``, if any) if it did not exist."""
        if self._session is None:
            self._session = AsyncSession(
                bind=bind,
                sync_session_class=self._session_class,
                # The unit of work, not the session, ends the transaction.
                join_transaction_mode="rollback_only",
                expire_on_commit=False,
                autoflush=False,
                info={TENANT_KEY: self._org_id, EVENT_HOLDERS_KEY: self.held},
            )
        return self._session

    def bind(self, connection: AsyncConnection) -> None:
        """Bind the session, if there is one, to the Core connection just built."""
        if self._session is not None:
            bind_session(self._session, connection)

    def has_changes(self) -> bool:
        """Whether the session has changes a flush would write."""
        session = self._session
        return session is not None and bool(session.new or session.dirty or session.deleted)

    def close(self) -> None:
        """Forget the transaction's aggregates: it ended, and their pending events with it."""
        self.held.clear()
        self.detach_all()

    def detach_all(self) -> None:
        """Detach every instance and drop the session (a new one is created on use)."""
        # Aggregates with events stay held: a rolled-back savepoint rewinds only
        # the events raised inside it.
        session, self._session = self._session, None
        if session is not None:
            # Closing detaches (no expiry): callers may still read what they loaded.
            # The adapter is in autocommit, so this sends nothing.
            session.sync_session.close()


def bind_session(session: AsyncSession, connection: AsyncConnection) -> None:
    """Bind ``session`` to ``connection`` as ``AsyncSession(bind=connection)`` would have."""
    session.bind = connection
    session.sync_session.bind = connection.sync_connection


def adopt(session: Session, obj: Any) -> Any:
    """``adopt_all`` for one instance: returns the session's own instance for its row, if any."""
    return adopt_all(session, [obj])[0]


def adopt_all(session: Session, objs: list[Any]) -> list[Any]:
    """``adopt`` for instances that have their identity key and no pending changes.

    They join the session's identity map the way SQLAlchemy's loader puts rows
    there: held weakly while unchanged (an aggregate the caller drops is freed at
    once), strongly from its first change until flushed. An instance that
    already has pending events is held until the unit of work collects them.
    """
    adopted = adopt_unchanged(session, objs)
    holders = session.info.get(EVENT_HOLDERS_KEY)
    if holders is not None:
        for obj, held in zip(objs, adopted, strict=True):
            if held is obj and "_pending_events" in obj.__dict__:
                holders[id(obj)] = obj
    return adopted
