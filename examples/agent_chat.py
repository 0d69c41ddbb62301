"""The seed's agent example: stream an assistant's thinking and answer, and run its tools here.

Talks to the server ``_connect`` picks (the real service with INFERENCE_API_KEY,
INFERENCE_BASE_URL when set; the agent from INFERENCE_AGENT, default
``infsh/assistant@latest``), or with ``--local`` or no key to an embedded local
server whose scripted assistant asks for ``get_weather`` when a message asks
about the weather.
"""

from __future__ import annotations

import json
import os
from typing import Any

from _connect import connect

from inferencesh import Message, ToolCall

AGENT = os.environ.get("INFERENCE_AGENT", "infsh/assistant@latest")
FORECASTS = {"Paris": "sunny, 21 degrees", "London": "light rain, 14 degrees"}


def get_weather(city: str) -> str:
    """The tool the agent may call: a stand-in for a real weather service."""
    return FORECASTS.get(city, "clear skies")


def run_my_tool(name: str, args: dict[str, Any]) -> str:
    """Run the tool the agent asked for."""
    if name == "get_weather":
        return get_weather(str(args.get("city", "")))
    return f"unknown tool {name!r}"


with connect() as client:
    agent = client.agent(AGENT)
    shown = {"type": ""}

    def on_message(msg: Message) -> None:  # msg.type is "text" or "thinking"; msg.content is the new chunk
        if msg.type != shown["type"]:
            shown["type"] = msg.type
            print(f"\n[{msg.type}] ", end="")
        print(msg.content, end="", flush=True)

    def on_tool_call(call: ToolCall) -> None:  # call.id, call.name, call.args
        print(f"\n[tool] {call.name}({json.dumps(call.args)})", end="", flush=True)
        agent.submit_tool_result(call.id, run_my_tool(call.name, call.args))

    for question in ("What's the weather in Paris?", "What did I say before?"):
        print(f"You: {question}", end="")
        shown["type"] = ""
        reply = agent.send_message(question, on_message=on_message, on_tool_call=on_tool_call)
        print(f"\n[{reply.status}] {len(reply.text)} characters, {len(reply.tool_calls)} tool call(s)")
