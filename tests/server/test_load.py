"""Many concurrent streams against one server, each read by its own thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .helpers import StreamResult, read_stream, run

STREAMS = 200


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=20, heartbeat=0.2) as srv:
        yield srv


def test_200_concurrent_streams_all_complete(server: LocalServer) -> None:
    # Tasks that would run for minutes: every stream is surely open before any ends, whatever the load.
    task_ids = [run(server.url, "infsh/sleep", {"seconds": 3600})["id"] for _ in range(STREAMS)]
    results: dict[str, StreamResult] = {}
    errors: list[BaseException] = []

    def follow(task_id: str) -> None:
        try:
            results[task_id] = read_stream(server.url, task_id, timeout=60)
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=follow, args=(t,)) for t in task_ids]
    for reader in readers:
        reader.start()
    assert wait_until(lambda: server.open_streams == STREAMS, timeout=30), server.open_streams  # open together
    for task_id in task_ids:  # then each ends, on its stream, with its terminal event
        requests.post(f"{server.url}/tasks/{task_id}/cancel", timeout=10).raise_for_status()
    for reader in readers:
        reader.join(30)
    assert not errors
    assert len(results) == STREAMS
    for task_id, result in results.items():
        assert result.error is None, (task_id, result.error)
        assert result.ids == list(range(1, len(result.ids) + 1))
        assert result.updates[-1]["status"] == 12
        assert [u["status"] for u in result.updates[:2]] == [1, 7]  # received, running, ticks, cancelled
    assert wait_until(lambda: server.open_streams == 0)
