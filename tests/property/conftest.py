"""Fixtures of the property suite: the helper-thread event loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.property.loop_thread import LoopThread


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop on a helper thread, shared by the machines of one module."""
    runner = LoopThread()
    yield runner
    runner.close()
