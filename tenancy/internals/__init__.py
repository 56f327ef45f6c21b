"""Every use of a private SQLAlchemy or asyncpg API, behind small typed functions.

The fast paths need a few of the dependencies' internals (an instance's state,
the identity map's storage, the compiler's positional parameters, the asyncio
adapter's greenlet bridge). They are used here and nowhere else:
``tests/internals/test_fence.py`` fails for a private name touched outside this
package, and ``tests/internals/test_canary.py`` checks that each internal used
here still exists with the shape relied on, so an upgrade of SQLAlchemy or
asyncpg fails loudly in one place. This package imports nothing of tenancy.
"""

from __future__ import annotations

from tenancy.internals.adapter import (
    connect_only_in_greenlet,
    connection_over,
    idle_connection_waiting,
    install_jsonb_codec,
    room_to_check_in,
    run_pool_step,
)
from tenancy.internals.compiled import (
    PositionalParameter,
    cache_key,
    needs_post_compile,
    positional_names,
    positional_parameters,
)
from tenancy.internals.events import (
    INSERT_EVENTS,
    LOAD_EVENTS,
    has_instance_listeners,
    has_mapper_listeners,
)
from tenancy.internals.handshake import (
    quiet_cancelled_tls_negotiation,
    tls_negotiation_is_quiet,
)
from tenancy.internals.identity import (
    adopt_unchanged,
    commit_loaded,
    identity_class,
    set_identity_key,
    state_factory,
)

__all__ = [
    "INSERT_EVENTS",
    "LOAD_EVENTS",
    "PositionalParameter",
    "adopt_unchanged",
    "cache_key",
    "commit_loaded",
    "connect_only_in_greenlet",
    "connection_over",
    "has_instance_listeners",
    "has_mapper_listeners",
    "identity_class",
    "idle_connection_waiting",
    "install_jsonb_codec",
    "needs_post_compile",
    "positional_names",
    "positional_parameters",
    "quiet_cancelled_tls_negotiation",
    "room_to_check_in",
    "run_pool_step",
    "set_identity_key",
    "state_factory",
    "tls_negotiation_is_quiet",
]
