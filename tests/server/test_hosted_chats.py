"""The hosted chats API (HOSTED.md "Agent chats"), with plain requests: runs, typed events, tools, stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from inferencesh.server import LocalServer

from .hosted_helpers import NDJSON, SSE, Read, legacy, poll, read

AGENT = "infsh/assistant@latest"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(dialect="hosted", speed=20, heartbeat=0.2) as srv:
        yield srv


def _run(server: LocalServer, text: str, chat_id: str | None = None, **input: Any) -> dict[str, Any]:
    body = {"agent": AGENT, "chat_id": chat_id, "input": {"text": text, **input}}
    answer: dict[str, Any] = legacy(requests.post(f"{server.url}/agents/run", json=body, timeout=5))
    return answer


def _events(got: Read, name: str) -> list[Any]:
    return [obj["data"] for obj in got.data if obj["event"] == name]


def _text(message: dict[str, Any], kind: str) -> str:
    return "".join(part["text"] for part in message["content"] if part["type"] == kind)


def test_run_answers_both_messages_and_the_run_is_working(server: LocalServer) -> None:
    answer = _run(server, "weather in Paris")
    assert set(answer) == {"user_message", "assistant_message"}
    user, assistant = answer["user_message"], answer["assistant_message"]
    assert user["role"] == "user" and user["content"] == [{"type": "text", "text": "weather in Paris"}]
    assert assistant["role"] == "assistant" and assistant["status"] == "pending"
    chat_id = assistant["chat_id"]
    assert user["chat_id"] == chat_id
    chat = legacy(requests.get(f"{server.url}/chats/{chat_id}", timeout=5))
    assert chat["active_run"]["state"] == "working" and chat["status"] in ("busy", "awaiting_input")
    assert [m["id"] for m in chat["chat_messages"]] == [user["id"], assistant["id"]]
    legacy(requests.post(f"{server.url}/chats/{chat_id}/stop", timeout=5))


def test_a_turn_on_the_ndjson_stream(server: LocalServer) -> None:
    answer = _run(server, "hello there")
    chat_id, message_id = answer["assistant_message"]["chat_id"], answer["assistant_message"]["id"]
    got = read(server.url, f"/chats/{chat_id}/stream", NDJSON)
    assert got.content_type == NDJSON and got.error is None and not got.bad_lines
    assert all(set(obj) <= {"event", "data", "fields"} for obj in got.data)
    names = [obj["event"] for obj in got.data]
    assert names[:3] == ["chat_messages", "chat_messages", "chats"]  # the current state first
    assert got.data[2]["data"]["active_run"]["state"] == "working"
    deltas = _events(got, "delta")
    assert deltas and {d["resource_id"] for d in deltas} == {message_id}
    reasoning = "".join(d["delta"].get("reasoning", "") for d in deltas)
    response = "".join(d["delta"].get("response", "") for d in deltas)
    snapshots = [m for m in _events(got, "chat_messages") if m["id"] == message_id]
    final = snapshots[-1]
    assert final["status"] == "ready" and [p["type"] for p in final["content"]] == ["reasoning", "text"]
    assert _text(final, "reasoning") == "Let me think about that."
    assert _text(final, "text") == 'You said "hello there". This is turn 1 of our chat.'
    # the stream may open after the first chunks (no replay): the opening snapshot holds them
    assert _text(snapshots[0], "reasoning") + reasoning == _text(final, "reasoning")
    assert _text(snapshots[0], "text") + response == _text(final, "text")
    lengths = [len(_text(m, "text")) for m in snapshots]
    assert lengths == sorted(lengths) and len(set(lengths)) > 5  # growing snapshots
    assert names[-1] == "chats" and got.data[-1]["data"]["active_run"]["state"] == "completed"
    assert names.index("chats", 3) > max(i for i, obj in enumerate(got.data) if obj["data"].get("id") == message_id)
    assert _events(got, "agent_runs")[-1]["state"] == "completed"


def test_a_client_tool_call(server: LocalServer) -> None:
    answer = _run(server, "what is the weather in New York?")
    chat_id = answer["assistant_message"]["chat_id"]
    waiting = read(
        server.url,
        f"/chats/{chat_id}/stream",
        stop=lambda r: any(m.get("tool_invocations") for m in _events(r, "chat_messages")),
    )
    message = [m for m in _events(waiting, "chat_messages") if m.get("tool_invocations")][-1]
    (invocation,) = message["tool_invocations"]
    assert invocation["type"] == "client" and invocation["status"] == "awaiting_input"
    assert invocation["function"] == {"name": "get_weather", "arguments": {"city": "New York"}}
    chat = legacy(requests.get(f"{server.url}/chats/{chat_id}", timeout=5))
    assert chat["active_run"]["state"] == "working" and chat["status"] == "awaiting_input"

    rest: list[Read] = []
    thread = threading.Thread(target=lambda: rest.append(read(server.url, f"/chats/{chat_id}/stream", timeout=10)))
    thread.start()
    poll(lambda: server.open_streams == 1)
    answered = requests.post(f"{server.url}/tools/{invocation['id']}", json={"result": "sunny"}, timeout=5)
    assert legacy(answered)["id"] == invocation["id"]
    thread.join(10)
    final = [m for m in _events(rest[0], "chat_messages") if m["id"] == message["id"]][-1]
    assert _text(final, "text") == "The weather in New York is sunny."
    assert final["tool_invocations"][0]["status"] == "completed"
    assert rest[0].data[-1]["data"]["active_run"]["state"] == "completed"
    again = requests.post(f"{server.url}/tools/{invocation['id']}", json={"result": "x"}, timeout=5)
    assert again.status_code == 409 and again.json()["type"].endswith("/conflict")


def test_sse_chat_stream_names_its_events(server: LocalServer) -> None:
    chat_id = _run(server, "hi")["assistant_message"]["chat_id"]
    got = read(server.url, f"/chats/{chat_id}/stream", SSE)
    assert got.content_type.startswith(SSE) and None not in got.events
    assert got.events[-1] == "chats" and got.objects[-1]["active_run"]["state"] == "completed"
    assert "delta" in got.events and b"\nid:" not in got.raw


def test_stop_cancels_the_run(server: LocalServer) -> None:
    chat_id = _run(server, "count to 5000")["assistant_message"]["chat_id"]
    stopped = legacy(requests.post(f"{server.url}/chats/{chat_id}/stop", timeout=5))
    assert stopped["active_run"]["state"] == "canceled"
    got = read(server.url, f"/chats/{chat_id}/stream")
    assert [obj["event"] for obj in got.data] == ["chat_messages", "chat_messages", "chats"]
    assert got.data[1]["data"]["status"] == "cancelled" and got.data[2]["data"]["active_run"]["state"] == "canceled"


def test_fail_and_memory_and_messages_list(server: LocalServer) -> None:
    first = _run(server, "please fail")
    chat_id = first["assistant_message"]["chat_id"]
    got = read(server.url, f"/chats/{chat_id}/stream")
    assert got.data[-1]["data"]["active_run"]["state"] == "failed"
    second = _run(server, "what did I say?", chat_id=chat_id)
    got = read(server.url, f"/chats/{chat_id}/stream")
    reply = [m for m in _events(got, "chat_messages") if m["id"] == second["assistant_message"]["id"]][-1]
    assert _text(reply, "text") == 'You said "please fail".'
    listed = legacy(requests.get(f"{server.url}/chats/{chat_id}/messages", timeout=5))
    assert set(listed) == {"items", "next_cursor", "has_next"} and listed["has_next"] is False
    assert [m["role"] for m in listed["items"]] == ["user", "assistant", "user", "assistant"]
    assert [m["status"] for m in listed["items"]] == ["ready", "failed", "ready", "ready"]


def test_chat_envelopes_and_errors(server: LocalServer) -> None:
    chat_id = _run(server, "hi")["assistant_message"]["chat_id"]
    bare = requests.get(f"{server.url}/chats/{chat_id}", headers={"X-API-Version": "2"}, timeout=5).json()
    assert bare["id"] == chat_id
    v3 = requests.get(f"{server.url}/chats/{chat_id}/messages", headers={"X-API-Version": "3"}, timeout=5).json()
    assert set(v3) == {"data", "messages"}
    missing = requests.get(f"{server.url}/chats/nope", timeout=5)
    assert missing.status_code == 404 and missing.json()["type"] == "https://inference.sh/errors/not_found"
    unknown = requests.post(f"{server.url}/agents/run", json={"agent": "x/y", "input": {"text": "a"}}, timeout=5)
    assert unknown.status_code == 404


def test_chat_stream_faults(server: LocalServer) -> None:
    chat_id = _run(server, "count to 50", _faults=[{"kind": "close", "after": 4}])["assistant_message"]["chat_id"]
    got = read(server.url, f"/chats/{chat_id}/stream")
    assert len(got.data) == 4 and got.error is None
    chat_id = _run(server, "count to 50", _faults=[{"kind": "mute", "after": 3}])["assistant_message"]["chat_id"]
    got = read(
        server.url,
        f"/chats/{chat_id}/stream",
        stop=lambda r: (
            r.heartbeats >= 2
            and legacy(requests.get(f"{server.url}/chats/{chat_id}", timeout=5))["active_run"]["state"] == "completed"
        ),
    )
    assert len(got.data) == 3 and got.heartbeats >= 2
