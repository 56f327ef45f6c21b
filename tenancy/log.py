"""Logging with the tenant id and operation attached to every record.

Records get ``org_id``, ``operation`` and ``request_id`` attributes from the
context, so a format such as ``%(org_id)s %(operation)s %(request_id)s %(message)s``
always works.
"""

from __future__ import annotations

import logging

from tenancy.context import current_operation, current_request_id, current_tenant
from tenancy.errors import ForeignKeyViolation, IsolationViolation, TenancyError

LOGGER_NAME = "tenancy"


class TenantContextFilter(logging.Filter):
    """Attach ``org_id`` and ``operation`` from the current context to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the attributes unless the caller already set them explicitly."""
        if not hasattr(record, "org_id"):
            org_id = current_tenant()
            record.org_id = str(org_id) if org_id is not None else "-"
        if not hasattr(record, "operation"):
            record.operation = current_operation() or "-"
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


def get_logger(name: str) -> logging.Logger:
    """Return a logger under ``tenancy`` whose records carry the tenant context."""
    logger = logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")
    if not any(isinstance(f, TenantContextFilter) for f in logger.filters):
        logger.addFilter(TenantContextFilter())
    return logger


_refusals = get_logger("tenancy.refusals")


def log_refusal(error: TenancyError) -> None:
    """Log a database refusal that may be an attack: RLS (42501) or a cross-tenant reference."""
    if isinstance(error, (IsolationViolation, ForeignKeyViolation)):
        _refusals.warning("database refused the operation: %s: %s", type(error).__name__, error)
