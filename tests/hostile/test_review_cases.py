"""Contract cases: unknown event types without ids, echoed keys, gzip, retried cancels, bad input."""

from __future__ import annotations

import gzip
import json
import pickle
import socket
from typing import Any

import pytest

import inferencesh
from inferencesh import inference

from .rawserver import Request, event, head, problem, serving, update

pytestmark = pytest.mark.timeout(60)

KEY = "inf_review_secret_0123456789"


def _client(url: str, **settings: Any) -> inferencesh.Client:
    return inference(api_key=KEY, base_url=url, backoff_initial=0.01, backoff_max=0.05, **settings)


def test_unknown_event_types_are_ignored_even_without_an_id() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        body = b": hi\n\n" + b"event: hello\ndata: whatever\n\n" + update(1) + b"event: x\n\n" + update(2, status=10)
        conn.sendall(head() + body)

    with serving(handler) as server:
        updates = list(_client(server.url).tasks.stream("tsk_hostile"))
    assert [u.event_id for u in updates] == [1, 2]


def test_a_key_echoed_by_the_server_never_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        echoed = request.headers.get("authorization", "")
        if request.path.endswith("/stream"):
            conn.sendall(head() + event(1, json.dumps({"echo": echoed})))  # not an update: ProtocolError
            return
        body = json.dumps({"type": "about:blank", "title": echoed, "status": 400, "detail": f"you sent {echoed}"})
        conn.sendall(head(400, "application/problem+json", length=len(body)) + body.encode())

    with serving(handler) as server, caplog.at_level("DEBUG"):
        client = _client(server.url)
        with pytest.raises(inferencesh.APIError) as api:
            client.tasks.get("tsk_1")
        with pytest.raises(inferencesh.ProtocolError) as protocol:
            list(client.tasks.stream("tsk_1"))
    for error in (api.value, protocol.value):
        for text in (str(error), repr(error), *(str(v) for v in vars(error).values())):
            assert KEY not in text
        assert KEY.encode() not in pickle.dumps(error)
    assert "***" in api.value.detail
    assert KEY not in caplog.text


@pytest.mark.parametrize("key", ["inf_with space", "inf_newline\n", "inf_tab\tkey", "inf_ünïcode"])
def test_keys_that_cannot_be_sent_are_usage_errors(key: str) -> None:
    with pytest.raises(inferencesh.UsageError) as caught:
        inference(api_key=key, base_url="http://127.0.0.1:9")
    assert key.strip() not in str(caught.value)


def test_a_gzip_encoded_stream_is_read() -> None:
    seen: list[str] = []

    def handler(conn: socket.socket, request: Request) -> None:
        seen.append(request.headers.get("accept-encoding", ""))
        body = gzip.compress(update(1) + update(2, status=10))
        conn.sendall(head(extra={"Content-Encoding": "gzip"}, length=len(body)) + body)

    with serving(handler) as server:
        updates = list(_client(server.url).tasks.stream("tsk_hostile"))
    assert [u.event_id for u in updates] == [1, 2]
    assert seen == ["identity"]


def test_cancel_is_retried_and_a_409_after_a_lost_answer_is_success() -> None:
    task = {"id": "tsk_1", "app": "a/b", "status": 12, "input": {}, "output": None, "error": None, "logs": []}

    def handler(conn: socket.socket, request: Request) -> None:
        if request.method == "POST" and request.index == 0:
            conn.sendall(problem(503, {"Retry-After": "0"}))
        elif request.method == "POST":
            conn.sendall(problem(409))  # the first attempt had cancelled it after all
        else:
            body = json.dumps({"data": task}).encode()
            conn.sendall(head(200, "application/json", length=len(body)) + body)

    with serving(handler) as server:
        cancelled = _client(server.url).tasks.cancel("tsk_1")
    assert cancelled.status == "cancelled"


def test_a_first_409_is_a_conflict() -> None:
    with serving(lambda conn, request: conn.sendall(problem(409))) as server:
        with pytest.raises(inferencesh.ConflictError):
            _client(server.url).tasks.cancel("tsk_1")


def test_deeply_nested_event_data_is_a_protocol_error() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head() + event(1, "[" * 200_000))

    with serving(handler) as server, pytest.raises(inferencesh.ProtocolError):
        list(_client(server.url).tasks.stream("tsk_hostile"))


@pytest.mark.parametrize("bad", [{"when": object()}, {"x": float("nan")}])
def test_input_that_is_not_json_is_a_usage_error_and_nothing_is_sent(bad: dict[str, Any]) -> None:
    requests: list[Request] = []
    with serving(lambda conn, request: requests.append(request)) as server:
        with pytest.raises(inferencesh.UsageError):
            _client(server.url).run({"app": "infsh/echo", "input": bad})
    assert requests == []


def test_a_cyclic_input_is_a_usage_error() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(inferencesh.UsageError):
        inference(base_url="http://127.0.0.1:9").run({"app": "infsh/echo", "input": cyclic})
