"""Many concurrent streams against one server, each read by its own thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from inferencesh.server import LocalServer

from .helpers import StreamResult, read_stream, run

STREAMS = 200


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=20, heartbeat=0.2) as srv:
        yield srv


def test_200_concurrent_streams_all_complete(server: LocalServer) -> None:
    task_ids = [run(server.url, "infsh/sleep", {"seconds": 40})["id"] for _ in range(STREAMS)]
    results: dict[str, StreamResult] = {}
    errors: list[BaseException] = []
    peak = 0

    def follow(task_id: str) -> None:
        try:
            results[task_id] = read_stream(server.url, task_id, timeout=30)
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=follow, args=(t,)) for t in task_ids]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 30
    while any(r.is_alive() for r in readers) and time.monotonic() < deadline:
        peak = max(peak, server.open_streams)
        time.sleep(0.005)
    for reader in readers:
        reader.join(5)
    assert not errors
    assert len(results) == STREAMS
    assert peak >= STREAMS * 0.9, peak  # they really were open together
    for task_id, result in results.items():
        assert result.error is None, (task_id, result.error)
        assert result.ids == list(range(1, len(result.ids) + 1))
        assert result.updates[-1]["status"] == 10
        assert len(result.ids) == 43  # received, running, 40 ticks, completed
    assert server.open_streams == 0
