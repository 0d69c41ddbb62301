"""The hosted dialect's task calls (HOSTED.md "Tasks"), with plain requests: envelopes, DTOs, errors, cancel, wait."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from inferencesh.server import LocalServer

from .hosted_helpers import (
    DTO_KEYS,
    RESULT_KEYS,
    get_task,
    legacy,
    poll,
    read,
    run,
    statuses,
    wait_terminal,
)

TQDM = re.compile(r"^ *\d+%\|[^|]*\| \d+/\d+ \[\d\d:\d\d<\d\d:\d\d, +[\d.]+it/s\]$")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(dialect="hosted", speed=20, heartbeat=0.2) as srv:
        yield srv


def _problem(answer: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["type"] == f"https://inference.sh/errors/{code}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_envelopes_follow_x_api_version(server: LocalServer) -> None:
    task = run(server.url, "infsh/echo", {"a": 1})
    base = f"{server.url}/tasks/{task['id']}"
    wait_terminal(server.url, task["id"])
    assert legacy(requests.get(base, timeout=5))["id"] == task["id"]
    bare = requests.get(base, headers={"X-API-Version": "2"}, timeout=5).json()
    assert set(bare) == DTO_KEYS and bare["output"] == {"a": 1}
    for version in ("3", "7"):
        v3 = requests.get(base, headers={"X-API-Version": version}, timeout=5).json()
        assert set(v3) == {"data", "messages"} and v3["messages"] == [] and v3["data"]["status"] == 10
    status = requests.get(f"{base}/status", headers={"X-API-Version": "2"}, timeout=5).json()
    assert set(status) == {"id", "status", "updated_at"} and status["status"] == 10
    assert legacy(requests.get(f"{base}/status", timeout=5))["id"] == task["id"]
    answer = requests.post(
        f"{server.url}/apps/run", json={"app": "infsh/echo", "input": {}}, headers={"X-API-Version": "3"}, timeout=5
    )
    assert set(answer.json()["data"]) == RESULT_KEYS


def test_run_answers_a_task_result(server: LocalServer) -> None:
    result = run(server.url, "infsh/flux-schnell@0.1", {"prompt": "a lake", "steps": 2})
    assert result["id"].endswith(result["short_id"]) and result["status"] == 1 and result["status_text"] == "received"
    assert result["output"] is None and result["error"] is None and result["session_id"] is None


def test_task_dto_holds_history_and_log_records(server: LocalServer) -> None:
    result = run(server.url, "infsh/flux-schnell", {"prompt": "a lake", "steps": 5})
    task = wait_terminal(server.url, result["id"])
    assert set(task) == DTO_KEYS and task["app_id"] == "infsh/flux-schnell"
    assert task["output"]["image"].startswith(server.url + "/files/") and task["output"]["image"].endswith(".png")
    assert [event["status"] for event in task["events"]] == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    for event in task["events"]:
        assert set(event) == {"id", "event_time", "status"}
    assert [record["log_type"] for record in task["logs"]] == [3, 4]
    for record in task["logs"]:
        assert set(record) == {"id", "created_at", "updated_at", "log_type", "content"}
        assert record["content"].endswith("\n")
    setup, work = (record["content"].splitlines() for record in task["logs"])
    assert "simulated FLUX.1-schnell: no model is loaded" in setup
    assert not any("Loading model" in line for line in setup + work)
    bars = [line for line in work if TQDM.match(line)]
    assert len(bars) == 5 and bars[-1].startswith("100%|") and "| 5/5 [" in bars[-1]
    assert " 40%|" in bars[1]


def test_wait_true_blocks_until_terminal(server: LocalServer) -> None:
    result = run(server.url, "infsh/flux-schnell", {"prompt": "x", "steps": 2}, wait=True)
    assert result["status"] == 10 and result["status_text"] == "completed" and result["output"]["image"]
    failed = requests.post(
        f"{server.url}/apps/run", json={"app": "infsh/fail", "input": {"message": "boom"}, "wait": True}, timeout=10
    )
    assert "boom" in _problem(failed, 422, "invalid_input")["detail"]


def test_wait_true_on_a_cancelled_task_is_422(server: LocalServer) -> None:
    answers: list[requests.Response] = []
    body = {"app": "infsh/sleep", "input": {"seconds": 600}, "wait": True}
    thread = threading.Thread(
        target=lambda: answers.append(requests.post(f"{server.url}/apps/run", json=body, timeout=30))
    )
    server.clear_requests()
    thread.start()
    poll(lambda: [r for r in server.requests if r.path == "/apps/run"])
    task_id = poll(lambda: [t for t in _running(server) if t["input"] == {"seconds": 600}])[0]["id"]
    legacy(requests.post(f"{server.url}/tasks/{task_id}/cancel", timeout=5))
    thread.join(10)
    assert "cancelled" in _problem(answers[0], 422, "invalid_input")["detail"]


def _running(server: LocalServer) -> list[dict[str, Any]]:
    store = server.app.state.infsh.store
    return [get_task(server.url, task_id) for task_id, task in list(store.tasks.items()) if not task.terminal]


def test_cancel_passes_through_cancelling(server: LocalServer) -> None:
    result = run(server.url, "infsh/sleep", {"seconds": 600})
    stream_seen: list[Any] = []

    def follow() -> None:
        stream_seen.extend(read(server.url, f"/tasks/{result['id']}/stream", timeout=15).data)

    thread = threading.Thread(target=follow)
    thread.start()
    poll(lambda: server.open_streams == 1)
    answer = legacy(requests.post(f"{server.url}/tasks/{result['id']}/cancel", timeout=5))
    assert answer["id"] == result["id"] and answer["status"] == 8
    thread.join(10)
    seen = statuses(stream_seen)
    assert seen[-2:] == [8, 12] and seen.count(8) == 1
    task = get_task(server.url, result["id"])
    assert [e["status"] for e in task["events"]][-3:] == [7, 8, 12]
    assert "Task cancelled" in task["logs"][-1]["content"]
    again = requests.post(f"{server.url}/tasks/{result['id']}/cancel", timeout=5)
    _problem(again, 409, "conflict")


def test_problem_codes(server: LocalServer) -> None:
    _problem(requests.get(f"{server.url}/tasks/tsk_nope", timeout=5), 404, "not_found")
    _problem(requests.get(f"{server.url}/tasks/tsk_nope/status", timeout=5), 404, "not_found")
    _problem(requests.post(f"{server.url}/apps/run", json={"app": "x/y", "input": {}}, timeout=5), 404, "not_found")
    bad_input = {"app": "infsh/sleep", "input": {"seconds": "x"}}
    _problem(requests.post(f"{server.url}/apps/run", json=bad_input, timeout=5), 422, "invalid_input")
    _problem(requests.post(f"{server.url}/apps/run", data=b"{", timeout=5), 400, "invalid_input")
    limited = {"app": "infsh/echo", "input": {"_faults": [{"kind": "run_status", "code": 429, "retry_after": 1}]}}
    answer = requests.post(f"{server.url}/apps/run", json=limited, timeout=5)
    _problem(answer, 429, "rate_limited")
    assert answer.headers["retry-after"] == "1"
    with LocalServer(dialect="hosted", api_key="k") as locked:
        _problem(requests.get(f"{locked.url}/tasks/x", timeout=5), 401, "unauthorized")
        ok = requests.get(f"{locked.url}/tasks/x", headers={"Authorization": "Bearer k"}, timeout=5)
        _problem(ok, 404, "not_found")


def test_internal_error_is_problem_json() -> None:
    with LocalServer(dialect="hosted") as srv:
        store = srv.app.state.infsh.store
        store.tasks["tsk_broken"] = object()  # a route that trips over it answers 500
        _problem(requests.get(f"{srv.url}/tasks/tsk_broken", timeout=5), 500, "internal_error")


def test_idempotency_key_returns_the_first_task(server: LocalServer) -> None:
    headers = {"Idempotency-Key": "hosted-key-1"}
    first = run(server.url, "infsh/echo", {"n": 1}, headers=headers)
    second = run(server.url, "infsh/echo", {"n": 2}, headers=headers)
    assert first["id"] == second["id"]


def test_run_drop_creates_the_task_then_answers_503(server: LocalServer) -> None:
    body = {"app": "infsh/echo", "input": {"_faults": [{"kind": "run_drop"}]}}
    headers = {"Idempotency-Key": "hosted-drop"}
    _problem(requests.post(f"{server.url}/apps/run", json=body, headers=headers, timeout=5), 503, "service_unavailable")
    retried = legacy(requests.post(f"{server.url}/apps/run", json=body, headers=headers, timeout=5))
    assert wait_terminal(server.url, retried["id"])["status"] == 10


def test_requests_record_accept_and_api_version(server: LocalServer) -> None:
    server.clear_requests()
    requests.get(f"{server.url}/tasks/x", headers={"Accept": "application/json", "X-API-Version": "3"}, timeout=5)
    record = server.requests[-1]
    assert record.accept == "application/json" and record.api_version == "3" and record.status == 404


def test_llm_streams_deltas_then_the_whole_output(server: LocalServer) -> None:
    result = run(server.url, "infsh/llm", {"prompt": "tell me", "reasoning": True})
    got = read(server.url, f"/tasks/{result['id']}/stream", timeout=15)
    deltas = [obj["data"] for obj in got.data if obj.get("event") == "delta"]
    assert deltas and all(set(d) == {"delta", "seq", "resource_id"} and d["resource_id"] == "" for d in deltas)
    # no replay: a stream opened after the first chunks sees the rest, numbered on
    first = deltas[0]["seq"]
    assert [d["seq"] for d in deltas] == list(range(first, first + len(deltas)))
    kinds = [next(k for k in d["delta"] if k != "usage") for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning")  # reasoning chunks first
    assert "usage" in deltas[-1]["delta"]
    final = got.data[-1]["data"]
    assert final["status"] == 10 and set(final["output"]) == {"response", "reasoning", "usage"}
    streamed = "".join(d["delta"].get("reasoning", "") + d["delta"].get("response", "") for d in deltas)
    assert (final["output"]["reasoning"] + final["output"]["response"]).endswith(streamed)
    assert final["output"]["response"].endswith(deltas[-1]["delta"]["response"])
    assert deltas[-1]["delta"]["usage"] == final["output"]["usage"]
    assert "simulated" in final["output"]["response"]


def test_llm_in_v1_sends_partial_output_previews() -> None:
    with LocalServer(speed=50) as v1:
        answer = requests.post(f"{v1.url}/apps/run", json={"app": "infsh/llm", "input": {"prompt": "hi"}}, timeout=5)
        task_id = answer.json()["data"]["id"]
        stream = requests.get(f"{v1.url}/tasks/{task_id}/stream", timeout=10)
        previews = [
            line for line in stream.text.splitlines() if line.startswith("data: ") and '"partial_output":{' in line
        ]
        assert len(previews) > 3
        final = requests.get(f"{v1.url}/tasks/{task_id}", timeout=5).json()["data"]
        assert final["output"]["response"].startswith('You said "hi"')
        first = json.loads(previews[0][len("data: ") :])["partial_output"]
        last = json.loads(previews[-1][len("data: ") :])["partial_output"]
        assert first == {"response": 'You'} and last["response"] == final["output"]["response"]
