"""The relay's listener: a dedicated connection that hears every committed outbox write."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from repositories.domain_events import PaymentOrderStatusChanged
from tenancy import TenancySettings
from tenancy.events.outbox import OUTBOX_CHANNEL
from tenancy.relay.local_broker import free_port
from tenancy.relay.notifications import Listener
from tenancy.settings import RELAY_ROLE


def relay_dsn(settings: TenancySettings) -> str:
    url = settings.url_for_role(RELAY_ROLE).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def test_listener_hears_a_committed_outbox_write(
    settings: TenancySettings, org_a: uuid.UUID, emit
) -> None:
    listener = Listener(relay_dsn(settings), OUTBOX_CHANNEL)
    heard = asyncio.Event()
    task = asyncio.create_task(listener.run(heard.set))
    try:
        await asyncio.wait_for(listener.connected.wait(), timeout=10)
        heard.clear()  # the wake-up every (re)connect gives
        await emit(
            org_a, [PaymentOrderStatusChanged(aggregate_id="o", old_status="a", new_status="b")]
        )
        await asyncio.wait_for(heard.wait(), timeout=10)
    finally:
        task.cancel()
        await asyncio.wait([task])


async def test_listener_reconnects_after_its_connection_is_killed(
    settings: TenancySettings, admin_engine, org_a: uuid.UUID, emit
) -> None:
    listener = Listener(relay_dsn(settings), OUTBOX_CHANNEL, application_name="listen-kill-test")
    heard = asyncio.Event()
    task = asyncio.create_task(listener.run(heard.set))
    try:
        await asyncio.wait_for(listener.connected.wait(), timeout=10)
        heard.clear()
        async with admin_engine.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'listen-kill-test'"
                )
            )
        # Every (re)connect wakes the relay once (notifications may have been missed).
        await asyncio.wait_for(heard.wait(), timeout=15)
        assert listener.connections == 2
        heard.clear()
        await emit(
            org_a, [PaymentOrderStatusChanged(aggregate_id="o", old_status="a", new_status="b")]
        )
        await asyncio.wait_for(heard.wait(), timeout=10)
    finally:
        task.cancel()
        await asyncio.wait([task])


async def test_listener_keeps_retrying_an_unreachable_database() -> None:
    listener = Listener(f"postgresql://nobody@127.0.0.1:{free_port()}/none", OUTBOX_CHANNEL)
    task = asyncio.create_task(listener.run(lambda: None))
    done, _ = await asyncio.wait([task], timeout=1.5)
    task.cancel()
    await asyncio.wait([task])

    assert done == set()  # still running: it retries instead of failing
    assert not listener.connected.is_set()
