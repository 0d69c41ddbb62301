"""Wire cases of both dialects against a raw socket server: id-only blocks, NDJSON, auto choice, envelopes."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

import inferencesh
from inferencesh import TaskStatus, inference

from .rawserver import Request, head, serving, update

pytestmark = pytest.mark.timeout(60)


def _client(url: str, **settings: Any) -> inferencesh.Client:
    return inference(api_key="test", base_url=url, backoff_initial=0.01, backoff_max=0.05, **settings)


def _ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)


def test_an_id_only_block_sets_the_last_event_id_sent_on_reconnect() -> None:
    """PROTOCOL.md: ``id`` blocks without data still set the last event ID (WHATWG), and a reconnect sends it."""

    def handler(conn: socket.socket, request: Request) -> None:
        if request.index == 0:
            conn.sendall(head() + update(1) + b"id: 4\n\n")  # then a clean end: a drop
        else:
            conn.sendall(head() + update(5, status=10))

    with serving(handler) as server:
        updates = list(_client(server.url).tasks.stream("tsk_hostile"))
        sent = [r.headers.get("last-event-id") for r in server.requests]
    assert [u.event_id for u in updates] == [1, 5]
    assert sent == [None, "4"]


def test_an_ndjson_stream_without_ids_is_read_as_the_hosted_dialect() -> None:
    dto = {"id": "tsk_h", "status": 7, "events": [{"status": 1}, {"status": 7}], "logs": []}
    done = {"data": {"id": "tsk_h", "status": 10, "output": {"ok": True}}, "fields": ["status", "output"]}

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(content_type="application/x-ndjson") + _ndjson(dto, {"type": "heartbeat"}, done))

    with serving(handler) as server:
        stream = _client(server.url, stream_format="ndjson").tasks.stream("tsk_h")
        updates = list(stream)
        accept = server.requests[0].headers.get("accept")
    assert accept == "application/x-ndjson"
    assert [u.status for u in updates] == [TaskStatus.RECEIVED, TaskStatus.RUNNING, TaskStatus.COMPLETED]
    assert [u.event_id for u in updates] == [1, 2, 3]
    assert updates[-1].output == {"ok": True}
    assert stream.last_event_id is None


def test_an_unnamed_sse_event_without_id_is_read_as_the_hosted_dialect() -> None:
    dto = {"id": "tsk_h", "status": 10, "events": [{"status": 7}, {"status": 10}], "output": 3}

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head() + b": ping\n\n" + f"data: {json.dumps(dto)}\n\n".encode())

    with serving(handler) as server:
        updates = list(_client(server.url).tasks.stream("tsk_h"))
    assert [(u.status, u.output) for u in updates] == [(TaskStatus.RUNNING, None), (TaskStatus.COMPLETED, 3)]


def test_a_pinned_v1_client_refuses_ndjson() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(content_type="application/x-ndjson") + _ndjson({"id": "t", "status": 10}))

    with serving(handler) as server, pytest.raises(inferencesh.ProtocolError, match="NDJSON"):
        list(_client(server.url, dialect="v1").tasks.stream("t"))


def test_hosted_status_codes_are_read_with_the_hosted_table_only_when_hosted() -> None:
    body = json.dumps({"success": True, "status": 200, "data": {"id": "t", "status": 8, "short_id": "t"}}).encode()
    v1_body = json.dumps({"data": {"id": "t", "app": "a", "status": 8, "logs": [], "progress": None}}).encode()

    def handler(conn: socket.socket, request: Request) -> None:
        payload = body if request.path == "/tasks/hosted" else v1_body
        conn.sendall(head(content_type="application/json", length=len(payload)) + payload)

    with serving(handler) as server:
        client = _client(server.url)
        assert client.tasks.get("hosted").status is TaskStatus.CANCELLING
        assert client.tasks.get("v1").status is TaskStatus.UPLOADING


def test_problem_codes_and_requirements() -> None:
    problem = {
        "type": "https://inference.sh/errors/requirements_not_met",
        "title": "Precondition Failed",
        "status": 412,
        "detail": "missing secrets",
        "errors": [{"type": "secret", "key": "HF_TOKEN", "message": "set HF_TOKEN"}],
    }
    payload = json.dumps(problem).encode()

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(412, "application/problem+json", length=len(payload)) + payload)

    with serving(handler) as server, pytest.raises(inferencesh.RequirementsNotMet) as info:
        _client(server.url).run({"app": "a/b", "input": {}}, wait=False)
    assert info.value.code == "requirements_not_met"
    assert info.value.requirements == problem["errors"]
    assert isinstance(info.value, inferencesh.APIError)


def test_a_hosted_chat_resumes_from_the_chat_when_the_stream_has_nothing_more() -> None:
    """After a drop the turn's missed text and its end come from ``GET /chats/{id}`` (HOSTED.md), not a replay."""
    run = {"user_message": {"id": "m1", "order": 0}, "assistant_message": {"id": "m2", "chat_id": "c1", "order": 1}}
    message = {
        "id": "m2",
        "role": "assistant",
        "order": 1,
        "status": "ready",
        "content": [{"type": "text", "text": "Hello world"}],
    }
    chat = {"id": "c1", "status": "idle", "active_run": {"state": "completed"}, "chat_messages": [message]}
    working = {"event": "chats", "data": {"id": "c1", "status": "busy", "active_run": {"state": "working"}}}
    delta = {"event": "delta", "data": {"delta": {"response": "Hello"}, "resource_id": "m2", "seq": 1}}

    def answer(conn: socket.socket, body: dict[str, Any]) -> None:
        payload = json.dumps({"success": True, "status": 200, "data": body}).encode()
        conn.sendall(head(content_type="application/json", length=len(payload)) + payload)

    def handler(conn: socket.socket, request: Request) -> None:
        if request.path == "/agents/run":
            answer(conn, run)
        elif request.path == "/chats/c1":
            answer(conn, chat)
        elif request.path == "/chats/c1/stream":  # the first connection drops after "Hello"; later ones say nothing
            body = _ndjson(working, delta) if request.index == 1 else _ndjson({"type": "heartbeat"})
            conn.sendall(head(content_type="application/x-ndjson") + body)

    with serving(handler) as server:
        chunks: list[str] = []
        reply = _client(server.url).agent("a/b").send_message("hi", on_message=lambda m: chunks.append(m.content))
    assert chunks == ["Hello", " world"]
    assert (reply.text, reply.status) == ("Hello world", "completed")


def test_json_nested_too_deeply_is_a_protocol_error() -> None:
    payload = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(content_type="application/json", length=len(payload)) + payload)

    with serving(handler) as server, pytest.raises(inferencesh.ProtocolError):
        _client(server.url).tasks.get("t")


def test_a_first_connection_that_brings_nothing_reads_the_task() -> None:
    """HOSTED.md: after any drop the task is read, the first connection's too."""
    done = json.dumps({"success": True, "status": 200, "data": {"id": "t1", "status": 10, "output": 5}}).encode()

    def handler(conn: socket.socket, request: Request) -> None:
        if request.path.endswith("/stream"):
            conn.sendall(head(content_type="application/x-ndjson"))  # and nothing: a clean, empty end
        else:
            conn.sendall(head(content_type="application/json", length=len(done)) + done)

    with serving(handler) as server:
        updates = list(_client(server.url, dialect="hosted").tasks.stream("t1"))
        paths = [r.path for r in server.requests]
    assert [(u.status.value, u.output) for u in updates] == [("completed", 5)]
    assert paths[:2] == ["/tasks/t1/stream", "/tasks/t1"]


def test_proxies_from_the_environment_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """As requests users expect: HTTP_PROXY carries the API's requests (read once, when the client is made)."""
    body = json.dumps({"data": {"id": "t", "app": "a", "status": 7, "logs": [], "progress": None}}).encode()

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(content_type="application/json", length=len(body)) + body)

    with serving(handler) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = _client("http://api.example.invalid")
        assert client.tasks.get("t").status == "running"
        assert proxy.requests[0].path == "http://api.example.invalid/tasks/t"  # absolute form: a proxy's request


def test_a_last_event_id_on_a_stream_without_ids_does_not_hide_its_events() -> None:
    """A hosted stream has no ids: a ``last_event_id`` cannot select a point in it, and must not swallow it."""
    dto = {"id": "tsk_h", "status": 10, "events": [{"status": 7}, {"status": 10}], "output": 3}

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head() + f"data: {json.dumps(dto)}\n\n".encode())

    with serving(handler) as server:
        updates = list(_client(server.url).tasks.stream("tsk_h", last_event_id=1))
    assert [(u.status, u.output) for u in updates] == [(TaskStatus.RUNNING, None), (TaskStatus.COMPLETED, 3)]
