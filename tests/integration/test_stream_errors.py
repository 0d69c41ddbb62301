"""How a lost stream reports itself: typed HTTP errors kept, task_id always set, the README's resume recipe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import inferencesh
from inferencesh import APIError, ConnectionLost, RateLimitError, TaskUpdate
from inferencesh.server import LocalServer
from tests.helpers import Gate, quick_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", params=["v1", "hosted"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    with LocalServer(speed=20, heartbeat=0.5, retry_ms=20, dialect=request.param) as running:
        yield running


def _sleeper(seconds: float, faults: list[dict[str, Any]]) -> dict[str, Any]:
    return {"app": "infsh/sleep", "input": {"seconds": seconds, "_faults": faults}}


@pytest.mark.parametrize(("code", "kind"), [(503, APIError), (429, RateLimitError)])
def test_an_error_status_that_outlasts_the_reconnects_keeps_its_type(
    server: LocalServer, code: int, kind: type[APIError]
) -> None:
    fault = {"kind": "status", "code": code, "retry_after": 0, "times": -1}
    with quick_client(server.url, "test", max_reconnects=2) as client:
        stream = client.run(_sleeper(5, [fault]), stream=True)
        with pytest.raises(ConnectionLost) as lost:
            list(stream)
    error = lost.value
    assert error.status_code == code
    assert isinstance(error.error, kind) and error.error.status_code == code
    assert error.__cause__ is error.error
    assert error.task_id == stream.task_id


def test_a_network_failure_has_no_status_but_a_task_id(server: LocalServer) -> None:
    gate = Gate(server.port)
    try:
        with quick_client(gate.url, "test", max_reconnects=1) as client:
            stream = client.run(_sleeper(60, []), stream=True)
            next(stream)
            gate.cut()
            with pytest.raises(ConnectionLost) as lost:
                list(stream)
            assert lost.value.status_code is None and lost.value.error is None
            assert lost.value.task_id == stream.task_id
    finally:
        gate.close()
    with quick_client(server.url, "test") as direct:
        direct.tasks.cancel(stream.task_id)


def test_the_readme_resume_recipe_after_the_server_was_cut_off_and_came_back(server: LocalServer) -> None:
    """README "Never losing an update": catch ConnectionLost, then ``tasks.stream(exc.task_id, last_event_id=...)``."""
    gate = Gate(server.port)
    seen: list[TaskUpdate] = []
    try:
        with quick_client(gate.url, "test", max_reconnects=1) as client:
            try:
                for update in client.run(_sleeper(30, []), stream=True):
                    seen.append(update)
                    if len(seen) == 2:
                        gate.cut()
            except inferencesh.ConnectionLost as exc:
                gate.restore()
                for update in client.tasks.stream(exc.task_id, last_event_id=exc.last_event_id):
                    seen.append(update)
            else:
                pytest.fail("the stream outlived the cut")
    finally:
        gate.close()
    assert seen[-1].status == "completed"
    statuses = [u.status.value for u in seen]
    if server.dialect == "v1":  # ids: nothing lost, nothing repeated
        assert [u.event_id for u in seen] == list(range(1, len(seen) + 1))
    else:  # no ids: the new stream starts from the task's history again
        assert statuses.count("completed") == 1 and statuses[0] == "received"
