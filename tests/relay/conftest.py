"""Fixtures for relay tests: the relay under waitress, in front of a real LocalServer, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import pytest

pytest.importorskip("waitress", reason="the relay extra: pip install -e '.[relay]'")

from inferencesh import Client
from inferencesh.relay import Relay, RelayServer, make_relay, site
from inferencesh.server import LocalServer
from tests.helpers import quick_client

from .helpers import MOUNT, SECRET


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalServer]:
    """A fast upstream that requires the key: flux-schnell runs in ~0.4 s, sleep ticks every 0.1 s."""
    with LocalServer(api_key=SECRET, speed=10, heartbeat=0.5, retry_ms=20) as running:
        yield running


@pytest.fixture(scope="module")
def quiet_upstream() -> Iterator[LocalServer]:
    """An upstream whose sleep task is silent for 10 s between ticks (heartbeats every 0.5 s)."""
    with LocalServer(api_key=SECRET, speed=0.1, heartbeat=0.5, retry_ms=20) as running:
        yield running


def make_client(server: LocalServer, key: str = SECRET) -> Client:
    """A client tuned for quick reconnects (idle reads time out after 2 × 0.5 s)."""
    return quick_client(server.url, key)


@pytest.fixture()
def client(upstream: LocalServer) -> Iterator[Client]:
    with make_client(upstream) as made:
        yield made


@dataclass
class Served:
    """A relay served by waitress: ``url`` is the site root, ``base`` the relay's mount URL."""

    relay: Relay
    server: RelayServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base(self) -> str:
        return self.server.url + MOUNT


@pytest.fixture()
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(client, **relay_options)``: the relay at /api/inference (and the page at /) under waitress."""
    started: list[Served] = []

    def start(client: Client, **options: Any) -> Served:
        relay = make_relay(client, **options)
        server = RelayServer(site(relay), threads=16).start()
        served = Served(relay, server)
        started.append(served)
        return served

    yield start
    for served in started:
        served.server.stop()
