"""Hosted chats API only: a turn that meets drops while it is still going loses and repeats nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inferencesh import Message, ToolCall
from inferencesh.server import LocalServer
from tests.helpers import quick_client

AGENT = "infsh/assistant@latest"
DROPS = [
    {"kind": "close", "after": 6},
    {"kind": "reset", "after": 5},
    {"kind": "cut", "after": 7},
    {"kind": "torn", "after": 4},
    {"kind": "stall", "after": 8, "seconds": 1},
]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    with LocalServer(speed=4, heartbeat=0.5, dialect="hosted") as clean, LocalServer(
        speed=4, heartbeat=0.5, dialect="hosted", faults=DROPS
    ) as faulty:
        yield clean, faulty


@pytest.mark.parametrize("stream_format", ["ndjson", "sse"])
def test_drops_mid_turn_lose_and_repeat_nothing(servers: tuple[LocalServer, LocalServer], stream_format: str) -> None:
    clean, faulty = servers
    prompt = "count to 40"
    with quick_client(clean.url, "test", stream_format=stream_format) as client:
        reference = client.agent(AGENT).send_message(prompt)
    chunks: list[Message] = []
    with quick_client(faulty.url, "test", stream_format=stream_format) as flaky:
        reply = flaky.agent(AGENT).send_message(prompt, on_message=chunks.append, timeout=60)
    assert reply.text == reference.text and reply.thinking == reference.thinking
    assert "".join(m.content for m in chunks if m.type == "text") == reference.text
    assert [m.event_id for m in chunks] == list(range(1, len(chunks) + 1))
    streams = [r for r in faulty.requests if r.path == f"/chats/{reply.chat_id}/stream"]
    assert len(streams) >= 4  # the turn was still going across the drops


def test_a_tool_call_survives_drops_and_is_dispatched_once(servers: tuple[LocalServer, LocalServer]) -> None:
    _, faulty = servers
    calls: list[ToolCall] = []

    def on_tool_call(call: ToolCall) -> str:
        calls.append(call)
        return "foggy"

    with quick_client(faulty.url, "test") as flaky:
        reply = flaky.agent(AGENT).send_message("weather in London", on_tool_call=on_tool_call, timeout=60)
    assert [c.args for c in calls] == [{"city": "London"}]
    assert reply.text == "The weather in London is foggy."
