"""``PlatformDatabase``: the library's ``Database`` handing out the payments unit of work."""

from __future__ import annotations

from repositories.unit_of_work import PlatformUnitOfWork
from tenancy.db.database import Database


class PlatformDatabase(Database[PlatformUnitOfWork]):
    """``db.unit_of_work(org_id)`` has every payments repository (``uow.customers``, ...)."""

    unit_of_work_class = PlatformUnitOfWork
