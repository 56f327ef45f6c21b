"""Whether a mapped class has listeners the repositories' fast paths would not fire.

Read from the mapper's and the class manager's ``dispatch`` collections, which
SQLAlchemy fills when listeners are added (propagated ones and those on
``Mapper`` itself included); a collection is true when it holds a listener.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Mapper

#: Mapper events a flush fires around an INSERT.
INSERT_EVENTS = ("before_insert", "after_insert")
#: Instance events the ORM's loader fires for a row it loads.
LOAD_EVENTS = ("load",)


def has_mapper_listeners(mapper: Mapper[Any], names: tuple[str, ...]) -> bool:
    """Return whether ``mapper`` has a listener for any of the mapper events ``names``."""
    dispatch = mapper.dispatch
    return any(bool(getattr(dispatch, name)) for name in names)


def has_instance_listeners(mapper: Mapper[Any], names: tuple[str, ...]) -> bool:
    """Return whether ``mapper``'s class has a listener for any of the instance events ``names``."""
    dispatch = mapper.class_manager.dispatch
    return any(bool(getattr(dispatch, name)) for name in names)


__all__ = ["INSERT_EVENTS", "LOAD_EVENTS", "has_instance_listeners", "has_mapper_listeners"]
