"""ORM instance state without the loader: building states, identity keys, the identity map.

What SQLAlchemy's loader does per row, done for rows read on the driver
connection. Each function names the internal it uses; the canary test checks
each of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Mapper, Session

#: Builds an ``InstanceState`` for (instance, class manager).
StateFactory = Callable[[Any, Any], Any]


def state_factory(mapper: Mapper[Any]) -> StateFactory:
    """Return the class manager's ``InstanceState`` constructor (``_state_constructor``)."""
    factory: StateFactory = mapper.class_manager._state_constructor
    return factory


def identity_class(mapper: Mapper[Any]) -> type[Any]:
    """Return the class identity keys of ``mapper``'s rows name (``_identity_class``).

    For single-table inheritance it is the base class, so a key is the same
    whichever subclass loaded the row.
    """
    found: type[Any] = mapper._identity_class
    return found


def set_identity_key(state: Any, key: tuple[Any, ...]) -> None:
    """Give a fresh (transient) ``state`` its identity key, making it detached."""
    state.key = key


def commit_loaded(obj: Any) -> None:
    """Mark every value in ``obj.__dict__`` as loaded from the database (``_commit_all``).

    The history is cleared and nothing is expired: what the ORM does after an
    INSERT it issued itself.
    """
    obj._sa_instance_state._commit_all(obj.__dict__)


def adopt_unchanged(session: Session, objs: list[Any]) -> list[Any]:
    """Put detached instances in ``session``'s identity map as its loader does; no SQL.

    The loader's own inlined form (``WeakInstanceDict._add_unpresent``), per
    row: unchanged instances are held weakly. An instance with changes, or one
    belonging to a session, goes through ``Session.add`` (the general path).
    Returns, per instance, the one the session holds for its row.
    """
    identity_map = session.identity_map
    states = identity_map._dict  # WeakInstanceDict storage
    identity_ref = identity_map._wr
    hash_key = session.hash_key
    adopted = []
    for obj in objs:
        state = obj._sa_instance_state
        key = state.key
        held = states.get(key)
        existing = held.obj() if held is not None else None
        if existing is None:
            if state.modified or state.session_id is not None:
                session.add(obj)
            else:
                state.session_id = hash_key
                states[key] = state
                state._instance_dict = identity_ref
            existing = obj
        adopted.append(existing)
    return adopted


__all__ = [
    "StateFactory",
    "adopt_unchanged",
    "commit_loaded",
    "identity_class",
    "set_identity_key",
    "state_factory",
]
