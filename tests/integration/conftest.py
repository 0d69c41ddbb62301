"""Fixtures for tests against the real local server over real sockets (no HTTP mocks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inferencesh import Client
from inferencesh.server import LocalServer
from tests.helpers import quick_client

SECRET = "inf_s3cr3t_key_that_must_never_leak"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One fast local server per test module: short heartbeats and retry delays."""
    with LocalServer(speed=200, heartbeat=0.5, retry_ms=20) as running:
        yield running


@pytest.fixture()
def client(server: LocalServer) -> Iterator[Client]:
    """A client tuned for quick reconnects; idle reads time out after 2 × 0.5 s."""
    with quick_client(server.url, SECRET) as made:
        yield made


def sdk_threads() -> list[threading.Thread]:
    """Threads the SDK may have started (the watchdog), to check none is left behind."""
    return [t for t in threading.enumerate() if t.name.startswith("inferencesh-watchdog")]


def flux(prompt: str = "a red fox", **faults: Any) -> dict[str, Any]:
    """A flux-schnell config, with ``_faults`` when given as ``faults=[...]``."""
    task_input: dict[str, Any] = {"prompt": prompt}
    if "faults" in faults:
        task_input["_faults"] = faults["faults"]
    return {"app": "infsh/flux-schnell", "input": task_input}
