"""Every error answer is application/problem+json with the PROTOCOL.md status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from inferencesh.server import LocalServer

from .helpers import assert_problem, read_stream, run, wait_terminal


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200) as srv:
        yield srv


def _post(server: LocalServer, body: object = None, data: bytes | None = None) -> requests.Response:
    if data is not None:
        return requests.post(f"{server.url}/apps/run", data=data, timeout=5)
    return requests.post(f"{server.url}/apps/run", json=body, timeout=5)


def test_400_body_not_json(server: LocalServer) -> None:
    assert_problem(_post(server, data=b"{not json"), 400)
    assert_problem(_post(server, data=b""), 400)


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        "text",
        {"input": {}},
        {"app": "", "input": {}},
        {"app": 3, "input": {}},
        {"app": "infsh/echo"},
        {"app": "infsh/echo", "input": [1]},
        {"app": "infsh/echo", "input": {}, "setup": 5},
        {"app": "infsh/flux-schnell", "input": {"steps": 2}},
        {"app": "infsh/sleep", "input": {"seconds": "1"}},
        {"app": "infsh/count", "input": {"n": -1}},
        {"app": "infsh/echo", "input": {"_faults": [{"kind": "nope"}]}},
        {"app": "infsh/echo", "input": {"_faults": {"kind": "close"}}},
    ],
)
def test_422_invalid_request(server: LocalServer, body: object) -> None:
    assert_problem(_post(server, body), 422)


def test_404_unknown_app_task_and_route(server: LocalServer) -> None:
    detail = assert_problem(_post(server, {"app": "nobody/nothing", "input": {}}), 404)["detail"]
    assert "nobody/nothing" in detail
    assert_problem(requests.get(f"{server.url}/tasks/tsk_missing", timeout=5), 404)
    assert_problem(requests.post(f"{server.url}/tasks/tsk_missing/cancel", timeout=5), 404)
    assert_problem(requests.get(f"{server.url}/tasks/tsk_missing/stream", timeout=5), 404)
    assert_problem(requests.get(f"{server.url}/no/such/route", timeout=5), 404)


def test_405_wrong_method(server: LocalServer) -> None:
    answer = requests.get(f"{server.url}/apps/run", timeout=5)
    assert_problem(answer, 405)
    assert answer.headers["allow"] == "POST"
    task = run(server.url, "infsh/echo", {})
    assert_problem(requests.delete(f"{server.url}/tasks/{task['id']}", timeout=5), 405)
    assert_problem(requests.get(f"{server.url}/tasks/{task['id']}/cancel", timeout=5), 405)


def test_409_cancel_finished_task(server: LocalServer) -> None:
    task = run(server.url, "infsh/echo", {})
    assert wait_terminal(server.url, task["id"])["status"] == 10
    assert_problem(requests.post(f"{server.url}/tasks/{task['id']}/cancel", timeout=5), 409)
    sleeper = run(server.url, "infsh/sleep", {"seconds": 10000})
    assert requests.post(f"{server.url}/tasks/{sleeper['id']}/cancel", timeout=5).ok
    assert_problem(requests.post(f"{server.url}/tasks/{sleeper['id']}/cancel", timeout=5), 409)


@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "0x10", "１"])
def test_400_bad_last_event_id(server: LocalServer, value: str) -> None:
    task = run(server.url, "infsh/echo", {})
    answer = requests.get(
        f"{server.url}/tasks/{task['id']}/stream",
        headers={"Last-Event-ID": value.encode().decode("latin-1")},
        timeout=5,
    )
    assert_problem(answer, 400)


@pytest.mark.parametrize("code", [503, 429, 500, 502])
def test_stream_status_fault(server: LocalServer, code: int) -> None:
    spec = {"kind": "status", "code": code, "retry_after": 2, "times": 2}
    task = run(server.url, "infsh/echo", {"_faults": [spec]})
    for _ in range(2):
        result = read_stream(server.url, task["id"])
        assert result.status == code
        assert result.headers["content-type"].startswith("application/problem+json")
        assert result.headers["retry-after"] == "2"
    assert read_stream(server.url, task["id"]).status == 200


def test_stream_status_fault_without_retry_after(server: LocalServer) -> None:
    task = run(server.url, "infsh/echo", {"_faults": [{"kind": "status", "code": 503}]})
    answer = requests.get(f"{server.url}/tasks/{task['id']}/stream", timeout=5)
    assert_problem(answer, 503)
    assert "retry-after" not in answer.headers


@pytest.mark.parametrize("code", [503, 429])
def test_run_status_fault_then_success(server: LocalServer, code: int) -> None:
    body = {
        "app": "infsh/echo",
        "input": {"nonce": code, "_faults": [{"kind": "run_status", "code": code, "retry_after": 0.5}]},
    }
    answer = _post(server, body)
    assert_problem(answer, code)
    assert answer.headers["retry-after"] == "0.5"
    second = _post(server, body)
    assert second.status_code == 200
    assert second.json()["data"]["input"] == {"nonce": code}


def test_401_with_api_key() -> None:
    with LocalServer(speed=200, api_key="sekret") as srv:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekret"}):
            answer = requests.post(
                f"{srv.url}/apps/run",
                json={"app": "infsh/echo", "input": {}},
                headers=headers,
                timeout=5,
            )
            assert_problem(answer, 401)
            assert_problem(requests.get(f"{srv.url}/tasks/x", headers=headers, timeout=5), 401)
            assert_problem(requests.get(f"{srv.url}/tasks/x/stream", headers=headers, timeout=5), 401)
        good = {"Authorization": "Bearer sekret"}
        task = run(srv.url, "infsh/echo", {}, **good)
        assert read_stream(srv.url, task["id"], headers=good).updates[-1]["status"] == 10
        assert_problem(requests.get(f"{srv.url}/tasks/nope", headers=good, timeout=5), 404)
        assert srv.requests[0].status == 401
