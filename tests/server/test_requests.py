"""Idempotency keys, lost answers, and what the server records of each request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from inferencesh.server import LocalServer

from .helpers import assert_problem, read_stream, wait_terminal


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200) as srv:
        yield srv


def _run(server: LocalServer, data: dict[str, Any], key: str | None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(
        f"{server.url}/apps/run",
        json={"app": "infsh/echo", "input": data},
        headers=headers,
        timeout=5,
    )


def test_same_key_same_task(server: LocalServer) -> None:
    first = _run(server, {"a": 1}, "key-1").json()["data"]
    again = _run(server, {"a": 1}, "key-1").json()["data"]
    assert again["id"] == first["id"]
    other = _run(server, {"a": 1}, "key-2").json()["data"]
    assert other["id"] != first["id"]
    none1 = _run(server, {"a": 1}, None).json()["data"]
    none2 = _run(server, {"a": 1}, None).json()["data"]
    assert len({first["id"], other["id"], none1["id"], none2["id"]}) == 4


def test_run_drop_creates_task_and_retry_gets_it(server: LocalServer) -> None:
    data = {"x": "drop", "_faults": [{"kind": "run_drop"}]}
    lost = _run(server, data, "drop-key")
    assert_problem(lost, 503)
    retried = _run(server, data, "drop-key")
    assert retried.status_code == 200
    task = retried.json()["data"]
    assert task["input"] == {"x": "drop"}
    assert wait_terminal(server.url, task["id"])["status"] == 10
    assert _run(server, data, "drop-key").json()["data"]["id"] == task["id"]


def test_run_drop_twice(server: LocalServer) -> None:
    data = {"x": "drop2", "_faults": [{"kind": "run_drop", "times": 2}]}
    assert_problem(_run(server, data, "drop-2"), 503)
    assert_problem(_run(server, data, "drop-2"), 503)
    ids = {_run(server, data, "drop-2").json()["data"]["id"] for _ in range(2)}
    assert len(ids) == 1


def test_request_records(server: LocalServer) -> None:
    server.clear_requests()
    headers = {
        "Idempotency-Key": "rec-1",
        "Authorization": "Bearer abc",
        "User-Agent": "inferencesh-python/test",
    }
    task = requests.post(
        f"{server.url}/apps/run",
        json={"app": "infsh/echo", "input": {}},
        headers=headers,
        timeout=5,
    ).json()["data"]
    read_stream(server.url, task["id"], last_event_id="1")
    requests.get(f"{server.url}/tasks/nope", timeout=5)
    records = server.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/apps/run", 200),
        ("GET", f"/tasks/{task['id']}/stream", 200),
        ("GET", "/tasks/nope", 404),
    ]
    post, stream, _ = records
    assert post.idempotency_key == "rec-1"
    assert post.authorization == "Bearer abc"
    assert post.user_agent == "inferencesh-python/test"
    assert post.last_event_id is None
    assert stream.last_event_id == "1"
    assert stream.idempotency_key is None
