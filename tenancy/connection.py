"""The driver connection that sends ``SET LOCAL app.org_id`` in the same round trip as BEGIN.

SQLAlchemy's asyncpg adapter begins transactions lazily: the ``BEGIN`` goes out
just before the first statement. Issuing ``SET LOCAL`` from the session's
``after_begin`` hook would cost one more round trip per transaction. Instead the
hook leaves the statement here, and this connection appends it to the ``BEGIN``
it sends next, as one simple-query message (``BEGIN; SET LOCAL ...``), so the
tenant is set before any statement of the transaction runs.

A pending statement is dropped whenever the pool hands the connection out or
takes it back, so it can never apply to another checkout.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no stubs
    """An asyncpg connection that prefixes its next ``BEGIN`` with a pending statement."""

    _tenancy_pending: str | None = None
    _tenancy_prelude: str | None = None

    def begin_always_with(self, statement: str) -> None:
        """Send ``statement`` after every ``BEGIN`` of this connection (e.g. SET LOCAL timeouts)."""
        self._tenancy_prelude = statement

    def begin_with(self, statement: str) -> None:
        """Send ``statement`` right after the next ``BEGIN`` of this connection."""
        self._tenancy_pending = statement

    def clear_pending(self) -> None:
        """Forget a statement that was never sent (the transaction ran no statement)."""
        self._tenancy_pending = None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 (asyncpg signature)
        """Execute ``query``; a pending statement rides along with a plain ``BEGIN``."""
        pending = self._tenancy_pending
        prelude = self._tenancy_prelude
        if (pending is not None or prelude is not None) and not args and query.startswith("BEGIN"):
            self._tenancy_pending = None
            extra = "; ".join(s for s in (prelude, pending) if s is not None)
            query = f"{query.rstrip(';')}; {extra}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status
