"""The local server's agent chats (PROTOCOL.md "Agent chat"), checked with plain requests and raw sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
import requests

from inferencesh.server import LocalServer
from tests.server.helpers import Item, StrictSSEParser, assert_problem, raw_get

AGENT = "infsh/assistant@latest"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200, heartbeat=0.3, retry_ms=20) as running:
        yield running


@dataclass
class Turn:
    """What one read of a chat stream saw."""

    status: int
    items: list[Item] = field(default_factory=list)
    complete: bool = False

    @property
    def events(self) -> list[Item]:
        return [item for item in self.items if item.kind == "event"]

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.events if item.id is not None]

    def text(self, kind: str = "text") -> str:
        return "".join(e.json()["content"] for e in self.events if e.event == "message" and e.json()["type"] == kind)


def start(server: LocalServer, text: str, chat_id: Optional[str] = None, **extra: Any) -> dict[str, str]:
    body: dict[str, Any] = {"agent": AGENT, "input": {"text": text, **extra}}
    if chat_id is not None:
        body["chat_id"] = chat_id
    answer = requests.post(f"{server.url}/agents/run", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert set(payload) == {"data"} and set(payload["data"]) == {"chat_id", "message_id"}
    data: dict[str, str] = payload["data"]
    return data


def read(
    server: LocalServer,
    chat_id: str,
    last_event_id: Optional[str] = None,
    *,
    until: Optional[str] = None,
    timeout: float = 10.0,
) -> Turn:
    """GET the chat stream until it ends (or an event of type ``until`` arrived)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = requests.get(f"{server.url}/chats/{chat_id}/stream", headers=headers, stream=True, timeout=timeout)
    turn = Turn(response.status_code)
    parser = StrictSSEParser()
    try:
        if response.status_code != 200:
            return turn
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_content(chunk_size=None):
            parser.feed(chunk)
            if until is not None and any(e.event == until for e in parser.events):
                break
        else:
            turn.complete = True
    finally:
        response.close()
        turn.items = parser.items
    return turn


def tool(server: LocalServer, call_id: str, result: Any) -> requests.Response:
    return requests.post(f"{server.url}/tools/{call_id}", json={"result": result}, timeout=5)


def stop(server: LocalServer, chat_id: str) -> requests.Response:
    return requests.post(f"{server.url}/chats/{chat_id}/stop", timeout=5)


def test_a_turn_thinks_then_answers_word_by_word_then_done_closes(server: LocalServer) -> None:
    run = start(server, "hello there")
    turn = read(server, run["chat_id"])
    assert turn.status == 200 and turn.complete
    assert turn.items[0].kind == "retry" and turn.items[0].retry == 20
    assert turn.ids == list(range(1, len(turn.ids) + 1))
    kinds = [e.json()["type"] if e.event == "message" else e.event for e in turn.events]
    assert kinds == ["thinking", "thinking"] + ["text"] * (len(kinds) - 3) + ["done"]
    assert turn.text("thinking") == "Let me think about that."
    assert turn.text() == 'You said "hello there". This is turn 1 of our chat.'
    assert all(" " not in e.json()["content"].strip() for e in turn.events[2:-1])  # one word per event
    assert {e.json()["message_id"] for e in turn.events} == {run["message_id"]}
    assert turn.events[-1].json() == {"message_id": run["message_id"], "status": "completed"}


def test_numbering_restarts_each_turn_and_the_chat_remembers(server: LocalServer) -> None:
    first = start(server, "My name is Ada.")
    chat_id = first["chat_id"]
    assert read(server, chat_id).events[-1].event == "done"
    second = start(server, "What did I say before?", chat_id)
    assert second["chat_id"] == chat_id and second["message_id"] != first["message_id"]
    turn = read(server, chat_id)
    assert turn.ids[0] == 1 and turn.ids == list(range(1, len(turn.ids) + 1))
    assert turn.text() == 'You said "My name is Ada.".'
    start(server, "and now?", chat_id)
    assert read(server, chat_id).text() == 'You said "and now?". This is turn 3 of our chat.'
    fresh = start(server, "What did I say?")
    assert read(server, fresh["chat_id"]).text() == "You have not said anything before."


def test_replay_after_last_event_id(server: LocalServer) -> None:
    chat_id = start(server, "count to 5")["chat_id"]
    whole = read(server, chat_id)
    last = whole.ids[-1]
    rest = read(server, chat_id, "3")
    assert rest.complete and rest.ids == list(range(4, last + 1))
    assert [e.data for e in rest.events] == [e.data for e in whole.events[3:]]
    at_end = raw_get(server.url, f"/chats/{chat_id}/stream", {"Last-Event-ID": str(last)})
    assert at_end.complete and at_end.body == b""  # resumed at done: nothing at all
    assert_problem(requests.get(f"{server.url}/chats/{chat_id}/stream", headers={"Last-Event-ID": "x"}, timeout=5), 400)


def test_a_tool_call_waits_for_its_result(server: LocalServer) -> None:
    chat_id = start(server, "What is the weather in Paris?")["chat_id"]
    head = read(server, chat_id, until="tool_call")
    call = head.events[-1].json()
    assert head.ids == [1, 2, 3] and set(call) == {"id", "name", "args"}
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    live: list[Turn] = []
    reader = threading.Thread(target=lambda: live.append(read(server, chat_id, "3")))
    reader.start()
    time.sleep(0.7)  # the turn waits: only heartbeats meanwhile
    assert reader.is_alive()
    answer = tool(server, call["id"], "sunny, 21 °C")
    assert answer.status_code == 200 and answer.json() == {"data": {"id": call["id"], "status": "submitted"}}
    assert_problem(tool(server, call["id"], "rainy"), 409)
    reader.join(5)
    turn = live[0]
    assert turn.complete and turn.ids[0] == 4
    assert any(item.kind == "comment" and item.comment == "ping" for item in turn.items)
    assert turn.text() == "The weather in Paris is sunny, 21 °C."
    assert turn.events[-1].json()["status"] == "completed"


def test_tool_result_rules(server: LocalServer) -> None:
    assert_problem(tool(server, "call_unknown", "x"), 404)
    chat_id = start(server, "weather in Oslo")["chat_id"]
    call_id = read(server, chat_id, until="tool_call").events[-1].json()["id"]
    assert_problem(tool(server, call_id, {"not": "a string"}), 422)
    assert_problem(requests.post(f"{server.url}/tools/{call_id}", data=b"{", timeout=5), 400)
    assert tool(server, call_id, '{"sky": "clear"}').status_code == 200
    assert read(server, chat_id).text() == 'The weather in Oslo is {"sky": "clear"}.'


def test_stop_ends_the_turn_cancelled(server: LocalServer) -> None:
    chat_id = start(server, "weather in Rome")["chat_id"]
    call_id = read(server, chat_id, until="tool_call").events[-1].json()["id"]
    live: list[Turn] = []
    reader = threading.Thread(target=lambda: live.append(read(server, chat_id)))
    reader.start()
    busy = requests.post(
        f"{server.url}/agents/run", json={"agent": AGENT, "chat_id": chat_id, "input": {"text": "hi"}}, timeout=5
    )
    assert_problem(busy, 409)
    answer = stop(server, chat_id)
    assert answer.status_code == 200 and answer.json() == {"data": {"chat_id": chat_id}}
    reader.join(5)
    turn = live[0]
    assert turn.complete and turn.ids == [1, 2, 3, 4]
    assert turn.events[-1].event == "done" and turn.events[-1].json()["status"] == "cancelled"
    assert_problem(tool(server, call_id, "too late"), 409)
    assert stop(server, chat_id).status_code == 200  # nothing going: a no-op
    start(server, "still there?", chat_id)
    assert read(server, chat_id).text() == 'You said "still there?". This is turn 2 of our chat.'


def test_a_failing_turn_ends_failed_with_an_error(server: LocalServer) -> None:
    turn = read(server, start(server, "please fail")["chat_id"])
    assert turn.text() == "Let me try."
    done = turn.events[-1].json()
    assert done["status"] == "failed" and done["error"] == "the assistant was asked to fail"


@pytest.mark.parametrize("ref", ["infsh/assistant", "infsh/assistant@latest", "infsh/assistant@1.2.3"])
def test_any_version_of_the_assistant(server: LocalServer, ref: str) -> None:
    body = {"agent": ref, "input": {"text": "hi"}}
    assert requests.post(f"{server.url}/agents/run", json=body, timeout=5).status_code == 200


@pytest.mark.parametrize("ref", ["my-org/assistant@latest", "infsh/assistant@", "infsh/other", "infsh/assistant2"])
def test_unknown_agents_are_404(server: LocalServer, ref: str) -> None:
    body = {"agent": ref, "input": {"text": "hi"}}
    assert_problem(requests.post(f"{server.url}/agents/run", json=body, timeout=5), 404)


def test_bad_requests_and_unknown_chats(server: LocalServer) -> None:
    url = server.url
    assert_problem(requests.post(f"{url}/agents/run", data=b"nope", timeout=5), 400)
    for body in (
        [],
        {"agent": AGENT},
        {"agent": AGENT, "input": {"text": 3}},
        {"agent": 7, "input": {"text": "hi"}},
        {"agent": AGENT, "chat_id": 5, "input": {"text": "hi"}},
        {"agent": AGENT, "input": {"text": "hi", "_faults": [{"kind": "nope"}]}},
        {"agent": AGENT, "input": {"text": "hi", "_faults": [{"kind": "run_drop"}]}},
    ):
        assert_problem(requests.post(f"{url}/agents/run", json=body, timeout=5), 422)
    body = {"agent": AGENT, "chat_id": "chat_missing", "input": {"text": "hi"}}
    assert_problem(requests.post(f"{url}/agents/run", json=body, timeout=5), 404)
    assert_problem(requests.get(f"{url}/chats/chat_missing/stream", timeout=5), 404)
    assert_problem(stop(server, "chat_missing"), 404)


def test_idempotency_key_starts_one_turn(server: LocalServer) -> None:
    body = {"agent": AGENT, "input": {"text": "once"}}
    headers = {"Idempotency-Key": "agent-key-1"}
    first = requests.post(f"{server.url}/agents/run", json=body, headers=headers, timeout=5).json()
    again = requests.post(f"{server.url}/agents/run", json=body, headers=headers, timeout=5).json()
    assert first == again
    chat_id = first["data"]["chat_id"]
    read(server, chat_id)
    start(server, "twice?", chat_id)
    assert "turn 2 of" in read(server, chat_id).text()


def test_close_fault_then_resume(server: LocalServer) -> None:
    chat_id = start(server, "count to 8", _faults=[{"kind": "close", "after": 3}])["chat_id"]
    cut = read(server, chat_id)
    assert cut.complete and cut.ids == [1, 2, 3]
    rest = read(server, chat_id, "3")
    assert rest.ids[0] == 4 and rest.events[-1].event == "done"
    assert "".join(e.json()["content"] for e in cut.events[2:] + rest.events[:-1]) == "1 2 3 4 5 6 7 8."


def test_reset_fault_aborts_the_connection(server: LocalServer) -> None:
    chat_id = start(server, "count to 8", _faults=[{"kind": "reset", "after": 2}])["chat_id"]
    raw = raw_get(server.url, f"/chats/{chat_id}/stream")
    assert isinstance(raw.error, ConnectionResetError) and not raw.complete
    parser = StrictSSEParser()
    parser.feed(raw.body)
    assert [e.id for e in parser.events] == [1, 2]
    assert read(server, chat_id, "2").ids[0] == 3


def test_malformed_fault_is_a_message_event(server: LocalServer) -> None:
    chat_id = start(server, "count to 3", _faults=[{"kind": "malformed", "after": 2}])["chat_id"]
    raw = raw_get(server.url, f"/chats/{chat_id}/stream")
    assert raw.complete and raw.body.endswith(b"id: 3\nevent: message\ndata: {not json\n\n")


def test_status_and_overlap_faults(server: LocalServer) -> None:
    faults = [{"kind": "status", "code": 503, "retry_after": 1}, {"kind": "overlap", "back": 2}]
    chat_id = start(server, "count to 4", _faults=faults)["chat_id"]
    refused = requests.get(f"{server.url}/chats/{chat_id}/stream", timeout=5)
    assert_problem(refused, 503)
    assert refused.headers["Retry-After"] == "1"
    assert read(server, chat_id, "4").ids[0] == 3  # two back: events the client has


def test_server_wide_faults_are_armed_on_turns() -> None:
    with LocalServer(speed=200, faults=[{"kind": "close", "after": 1}]) as server:
        chat_id = start(server, "hi")["chat_id"]
        assert read(server, chat_id).ids == [1]
        assert read(server, chat_id, "1").events[-1].event == "done"


def test_shutdown_is_fast_with_a_turn_waiting_for_a_tool() -> None:
    server = LocalServer(speed=200, heartbeat=15).start()
    chat_id = start(server, "weather in Lima")["chat_id"]
    live: list[Turn] = []
    reader = threading.Thread(target=lambda: live.append(read(server, chat_id, "3")))
    reader.start()
    time.sleep(0.2)
    assert server.open_streams == 1
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 1.0
    reader.join(2)
    assert not reader.is_alive() and live and live[0].ids == []


def test_no_stream_is_left_open(server: LocalServer) -> None:
    deadline = time.monotonic() + 2
    while server.open_streams and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_streams == 0
