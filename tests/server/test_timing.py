"""Heartbeats, stalls on an idle stream, and the app clock (real time, speed=1)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from inferencesh.server import LocalServer

from .helpers import read_stream, run


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=1, heartbeat=0.2) as srv:
        yield srv


def test_heartbeats_when_idle(server: LocalServer) -> None:
    task = run(server.url, "infsh/sleep", {"seconds": 1})  # one tick after 1 s
    result = read_stream(server.url, task["id"])
    assert result.error is None and result.updates[-1]["status"] == 10
    kinds = [item.kind for item in result.items]
    assert kinds[0] == "retry"
    pings = [item for item in result.items if item.kind == "comment"]
    assert all(item.comment == "ping" for item in pings)
    assert 3 <= len(pings) <= 6, kinds
    times = [result.items[1].at] + [p.at for p in pings]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.15 <= gap <= 0.6 for gap in gaps), gaps
    assert kinds[-1] == "event"  # closed after the terminal event, no ping after it


def test_stall_silences_heartbeats(server: LocalServer) -> None:
    faults = [{"kind": "stall", "after": 2, "seconds": 1.0}]
    task = run(server.url, "infsh/sleep", {"seconds": 2, "_faults": faults})
    result = read_stream(server.url, task["id"])
    assert result.error is None and result.updates[-1]["status"] == 10
    second = result.events[1]
    after = result.items[result.items.index(second) + 1]
    assert after.at - second.at >= 0.9  # no byte at all during the stall
    assert any(item.kind == "comment" for item in result.items[result.items.index(after) :])


def test_speed_divides_app_delays() -> None:
    with LocalServer(speed=10) as srv:
        start = time.monotonic()
        task = run(srv.url, "infsh/flux-schnell", {"prompt": "timing"})
        result = read_stream(srv.url, task["id"])
        took = time.monotonic() - start
    assert result.updates[-1]["status"] == 10
    assert 0.3 <= took <= 1.0, took  # so about 3.7 s at speed=1
