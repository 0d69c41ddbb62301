"""Agents through the SDK against the local server: chunks, tool calls, turns, stop, resume, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import inferencesh
from inferencesh import (
    AgentError,
    CancelToken,
    Client,
    ConflictError,
    Done,
    Message,
    NotFoundError,
    StreamTimeout,
    ToolCall,
    UsageError,
)
from inferencesh.server import LocalServer
from tests.helpers import quick_client, wait_until
from tests.integration.conftest import sdk_threads

AGENT = "infsh/assistant@latest"
#: Every fault a connection can meet, each once per turn; "after" counts events on one connection.
DROPS = [
    {"kind": "close", "after": 4},
    {"kind": "reset", "after": 3},
    {"kind": "cut", "after": 5},
    {"kind": "torn", "after": 2},
    {"kind": "stall", "after": 6, "seconds": 3},
    {"kind": "status", "code": 503},
    {"kind": "overlap", "back": 2},
]


def _client(url: str) -> Client:
    return quick_client(url, "test")


#: Every test runs against both dialects: PROTOCOL.md's chat events and the hosted chats API.
DIALECTS = ["v1", "hosted"]


@pytest.fixture(scope="module", params=DIALECTS)
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    with LocalServer(speed=200, heartbeat=0.5, retry_ms=20, dialect=request.param) as running:
        yield running


@pytest.fixture()
def client(server: LocalServer) -> Iterator[Client]:
    with _client(server.url) as made:
        yield made


@pytest.fixture(scope="module")
def faulty(server: LocalServer) -> Iterator[LocalServer]:
    """A server of the same dialect whose every turn meets every connection fault once."""
    drops = DROPS if server.dialect == "v1" else [f for f in DROPS if f["kind"] != "overlap"]
    with LocalServer(speed=200, heartbeat=0.5, retry_ms=20, faults=drops, dialect=server.dialect) as running:
        yield running


def _hosted_run(server: LocalServer, chat_id: str) -> dict[str, Any]:
    chat = requests.get(f"{server.url}/chats/{chat_id}", headers={"X-API-Version": "2"}, timeout=5).json()
    run: dict[str, Any] = chat["active_run"]
    return run


def _last_done(server: LocalServer, chat_id: str) -> dict[str, Any]:
    """The ``done`` event of the chat's latest turn, read from a plain replay (hosted: the chat's run)."""
    if server.dialect == "hosted":
        state = _hosted_run(server, chat_id)["state"]
        return {"status": {"canceled": "cancelled"}.get(state, state)}
    body = requests.get(f"{server.url}/chats/{chat_id}/stream", timeout=5).text
    block = body.strip().split("\n\n")[-1]
    assert "event: done" in block, body
    done: dict[str, Any] = json.loads(block.split("data: ", 1)[1])
    return done


def _turn_is_going(server: LocalServer, chat_id: str) -> bool:
    if server.dialect == "hosted":
        return bool(_hosted_run(server, chat_id)["state"] == "working")
    with requests.get(f"{server.url}/chats/{chat_id}/stream", stream=True, timeout=5) as response:
        for chunk in response.iter_content(chunk_size=None):
            if b"event: tool_call" in chunk:
                return True
            if b"event: done" in chunk:
                return False
    return False


def test_thinking_then_text_and_the_reply_is_the_chunks(client: Client) -> None:
    agent = client.agent(AGENT)
    chunks: list[Message] = []
    reply = agent.send_message("Explain quantum entanglement", on_message=chunks.append)
    kinds = [m.type for m in chunks]
    assert kinds == ["thinking", "thinking"] + ["text"] * (len(kinds) - 2)
    assert reply.thinking == "".join(m.content for m in chunks if m.type == "thinking") == "Let me think about that."
    assert reply.text == "".join(m.content for m in chunks if m.type == "text")
    assert reply.text == 'You said "Explain quantum entanglement". This is turn 1 of our chat.'
    assert reply.status == "completed" and reply.error is None and reply.tool_calls == ()
    assert reply.chat_id == agent.chat_id and reply.chat_id.startswith("chat_")
    assert reply.message_id.startswith("msg_") and {m.message_id for m in chunks} == {reply.message_id}
    assert [m.event_id for m in chunks] == list(range(1, len(chunks) + 1))


def test_a_tool_call_answered_by_returning_the_result(client: Client) -> None:
    calls: list[ToolCall] = []

    def on_tool_call(call: ToolCall) -> str:
        calls.append(call)
        return f"sunny in {call.args['city']}"

    reply = client.agent(AGENT).send_message("What's the weather in Paris?", on_tool_call=on_tool_call)
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert reply.tool_calls == tuple(calls) and calls[0].id.startswith("call_")
    assert reply.text == "The weather in Paris is sunny in Paris."


def test_a_tool_call_answered_with_submit_tool_result(client: Client) -> None:
    agent = client.agent(AGENT)

    def on_tool_call(call: ToolCall) -> None:
        agent.submit_tool_result(call.id, {"forecast": "rain", "celsius": 12})

    reply = agent.send_message("weather in Bergen please", on_tool_call=on_tool_call)
    assert reply.text == 'The weather in Bergen is {"forecast": "rain", "celsius": 12}.'
    with pytest.raises(ConflictError):
        agent.submit_tool_result(reply.tool_calls[0].id, "again")
    with pytest.raises(NotFoundError):
        agent.submit_tool_result("call_unknown", "x")


def test_a_multi_turn_chat(client: Client) -> None:
    agent = client.agent(AGENT)
    first = agent.send_message("My name is Ada.")
    second = agent.send_message("What did I say before?")
    third = agent.send_message("Thanks")
    assert first.chat_id == second.chat_id == third.chat_id == agent.chat_id
    assert len({first.message_id, second.message_id, third.message_id}) == 3
    assert second.text == 'You said "My name is Ada.".'
    assert third.text == 'You said "Thanks". This is turn 3 of our chat.'
    again = client.agent(AGENT, chat_id=agent.chat_id).send_message("What did I say?")
    assert again.text == 'You said "Thanks".'


def test_each_turn_carries_its_own_idempotency_key(client: Client, server: LocalServer) -> None:
    server.clear_requests()
    agent = client.agent(AGENT)
    agent.send_message("one")
    agent.send_message("two")
    keys = [r.idempotency_key for r in server.requests if r.path == "/agents/run"]
    assert len(keys) == 2 and all(keys) and keys[0] != keys[1]


def test_stream_yields_typed_events(client: Client) -> None:
    agent = client.agent(AGENT)
    seen: list[Any] = []
    with agent.stream("weather in Tokyo") as turn:
        for event in turn:
            seen.append(event)
            if isinstance(event, ToolCall):
                agent.submit_tool_result(event.id, "cloudy")
    assert [type(e) for e in seen] == [Message, Message, ToolCall] + [Message] * 6 + [Done]
    assert isinstance(seen[-1], Done) and seen[-1].status == "completed"
    assert turn.reply is not None and turn.reply.text == "The weather in Tokyo is cloudy." == turn.text
    assert [e.event_id for e in seen] == list(range(1, 11))
    assert list(turn) == []  # iterated once


def test_stop_from_a_callback_ends_the_turn_cancelled(client: Client) -> None:
    agent = client.agent(AGENT)
    reply = agent.send_message("weather in Rome", on_tool_call=lambda call: agent.stop())
    assert reply.status == "cancelled" and reply.text == "" and len(reply.tool_calls) == 1
    assert agent.send_message("hello").text.endswith("turn 2 of our chat.")


def test_stop_from_another_thread(client: Client) -> None:
    agent = client.agent(AGENT)
    events: list[Any] = []
    for event in agent.stream("weather in Cairo"):
        events.append(event)
        if isinstance(event, ToolCall):
            threading.Timer(0.1, agent.stop).start()
    assert isinstance(events[-1], Done) and events[-1].status == "cancelled"


def test_a_drop_mid_answer_is_resumed_without_loss_or_repeat(client: Client, faulty: LocalServer) -> None:
    prompt = "count to 60"
    reference = client.agent(AGENT).send_message(prompt)
    chunks: list[Message] = []
    began = time.monotonic()
    with _client(faulty.url) as flaky:
        reply = flaky.agent(AGENT).send_message(prompt, on_message=chunks.append)
    assert time.monotonic() - began < 8
    assert reply.text == reference.text and reply.thinking == reference.thinking
    assert [m.event_id for m in chunks] == list(range(1, len(chunks) + 1))
    streams = [r for r in faulty.requests if r.path.endswith("/stream")]
    if faulty.dialect == "v1":
        resumed = [r for r in streams if r.last_event_id is not None]
        assert len(resumed) >= 5  # torn, reset, close, cut, stall: one reconnect each (status hit the first GET)
    else:  # no ids: each drop re-reads the chat, which may find the (fast) turn already over
        reads = [r for r in faulty.requests if r.method == "GET" and r.path.startswith("/chats/") and r not in streams]
        assert len(streams) >= 2 and len(reads) >= 1


def test_a_drop_around_a_tool_call_delivers_it_once(faulty: LocalServer) -> None:
    calls: list[ToolCall] = []

    def on_tool_call(call: ToolCall) -> str:
        calls.append(call)
        return "windy"

    with _client(faulty.url) as flaky:
        reply = flaky.agent(AGENT).send_message("weather in Wellington", on_tool_call=on_tool_call)
    assert len(calls) == 1 and reply.text == "The weather in Wellington is windy."


def test_a_failed_turn_raises_agent_error(client: Client) -> None:
    agent = client.agent(AGENT)
    with pytest.raises(AgentError) as raised:
        agent.send_message("please fail")
    assert raised.value.chat_id == agent.chat_id
    assert raised.value.error == "the assistant was asked to fail"
    events = list(agent.stream("fail again"))  # the generator reports it instead
    assert isinstance(events[-1], Done) and events[-1].status == "failed" and events[-1].error


def test_errors_are_typed(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.agent("my-org/nobody@latest").send_message("hi")
    with pytest.raises(NotFoundError):
        client.agent(AGENT, chat_id="chat_missing").send_message("hi")
    with pytest.raises(UsageError):
        client.agent(AGENT).send_message(42)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        client.agent("")
    agent = client.agent(AGENT)
    agent.stop()  # before any turn: nothing to do


def test_a_tool_call_without_a_handler_stops_the_turn(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)
    with pytest.raises(UsageError, match="get_weather"):
        agent.send_message("weather in Nairobi")
    assert agent.chat_id is not None
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_an_exception_in_on_tool_call_reaches_the_caller_unchanged(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)
    boom = RuntimeError("tool crashed")

    def on_tool_call(call: ToolCall) -> None:
        raise boom

    with pytest.raises(RuntimeError) as raised:
        agent.send_message("weather in Quito", on_tool_call=on_tool_call)
    assert raised.value is boom
    assert agent.chat_id is not None
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_an_exception_in_on_message_reaches_the_caller_unchanged(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)

    class Stop(Exception):
        pass

    def on_message(msg: Message) -> None:
        if msg.type == "text":
            raise Stop

    with pytest.raises(Stop):
        agent.send_message("count to 5000", on_message=on_message)
    assert agent.chat_id is not None
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_timeout_on_a_turn_waiting_for_a_tool(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)
    began = time.monotonic()
    with pytest.raises(StreamTimeout) as raised:
        agent.send_message("weather in Lima", on_tool_call=lambda call: None, timeout=0.8)
    assert 0.7 < time.monotonic() - began < 2.0
    assert isinstance(raised.value, TimeoutError)
    assert agent.chat_id is not None
    assert _turn_is_going(server, agent.chat_id)  # as for tasks: only the local stream ended
    agent.stop()
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_timeout_with_stop_on_abort_stops_the_turn(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)
    with pytest.raises(StreamTimeout):
        agent.send_message("weather in Lima", on_tool_call=lambda call: None, timeout=0.5, stop_on_abort=True)
    assert agent.chat_id is not None
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_cancel_on_a_turn_waiting_for_a_tool(client: Client, server: LocalServer) -> None:
    agent = client.agent(AGENT)
    token = CancelToken()
    token.cancel_after(0.4)
    began = time.monotonic()
    with pytest.raises(inferencesh.Cancelled):
        for _ in agent.stream("weather in Baku", cancel=token, stop_on_abort=True):
            pass
    assert time.monotonic() - began < 1.5
    assert agent.chat_id is not None
    assert _last_done(server, agent.chat_id)["status"] == "cancelled"


def test_a_busy_chat_is_a_conflict(client: Client) -> None:
    agent = client.agent(AGENT)
    with pytest.raises(StreamTimeout):
        agent.send_message("weather in Accra", on_tool_call=lambda call: None, timeout=0.3)
    with pytest.raises(ConflictError):
        agent.send_message("hello?")
    agent.stop()
    assert agent.send_message("hello?").status == "completed"


def test_nothing_is_left_behind(server: LocalServer) -> None:
    assert wait_until(lambda: server.open_streams == 0)
    assert wait_until(lambda: not sdk_threads())
