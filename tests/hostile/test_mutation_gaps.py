"""Behaviours that a switched-off feature left green (``bench/mutate.py``): each test here fails
with its mutation and passes without it."""

from __future__ import annotations

import time

import pytest

from .rawserver import serving, update
from .test_wire import TASK, _drop_then_finish, _finish, make_client

pytestmark = pytest.mark.timeout(60)


def test_the_servers_retry_is_waited_before_reconnecting() -> None:
    # mutation sse-retry-ignored: the reconnect would come after the 10-50 ms backoff alone.
    first = b"retry: 800\n\n" + update(1) + update(2)
    with serving(_drop_then_finish(first, _finish)) as server, make_client(server.url, max_retry_delay=5) as client:
        times = [time.monotonic() for _ in client.tasks.stream(TASK, timeout=30)]
    assert len(times) == 3
    assert times[2] - times[1] >= 0.7  # max(retry: 800 ms, backoff), not the backoff alone
