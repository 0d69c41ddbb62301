"""Behaviours that a switched-off feature left green (``bench/mutate.py``): each test here fails
with its mutation and passes without it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from inferencesh import Client
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .test_stream import own_sockets


@pytest.fixture()
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting frees objects while the test runs (no collection of cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("no_cyclic_gc")
def test_dropping_the_last_reference_releases_at_once_without_a_collection(server: LocalServer, client: Client) -> None:
    # mutation stream-in-a-cycle: a stream kept alive by a reference cycle waits for the cyclic
    # collector; "dropping the last reference releases the connection at once" means refcounting.
    config = {"app": "infsh/sleep", "input": {"seconds": 86400}}  # minutes at speed 200: only the client ends it
    baseline = server.open_streams
    stream = client.run(config, stream=True)
    next(stream)
    assert wait_until(lambda: server.open_streams == baseline + 1, timeout=3.0)
    during = own_sockets(server.port)
    del stream
    assert during and len(own_sockets(server.port)) < len(during)
    assert wait_until(lambda: server.open_streams <= baseline, timeout=3.0)
