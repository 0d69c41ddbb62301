"""``examples/agent_chat.py`` runs against the local server and prints the turn as it streams."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencesh.server import LocalServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXPECTED = """\
You: What's the weather in Paris?
[thinking] Let me think about that.
[tool] get_weather({"city": "Paris"})
[text] The weather in Paris is sunny, 21 degrees.
[completed] 42 characters, 1 tool call(s)
You: What did I say before?
[thinking] Let me think about that.
[text] You said "What's the weather in Paris?".
[completed] 40 characters, 0 tool call(s)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200) as running:
        yield running


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_chat.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLES,
    )


def test_agent_chat_example(server: LocalServer) -> None:
    env = {**os.environ, "INFERENCE_BASE_URL": server.url, "INFERENCE_API_KEY": "example-key"}
    env.pop("INFERENCE_AGENT", None)
    done = _run(env)
    assert done.returncode == 0, done.stderr
    notice, _, rest = done.stdout.partition("\n")
    assert (
        notice
        == f"(using the local simulation server at {server.url}: unset INFERENCE_BASE_URL to use the real service)"
    )
    assert rest == EXPECTED
    turns = [r for r in server.requests if r.path == "/agents/run"]
    assert len(turns) == 2 and all(r.authorization == "Bearer example-key" for r in turns)
    assert any(r.path.startswith("/tools/") and r.status == 200 for r in server.requests)


def test_agent_chat_example_without_a_configured_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    done = _run(env)
    assert done.returncode == 0, done.stderr
    notice, _, rest = done.stdout.partition("\n")
    hint = "set INFERENCE_API_KEY to use the real service"
    assert re.fullmatch(rf"\(using the local simulation server at http://127\.0\.0\.1:\d+: {hint}\)", notice), notice
    assert rest == EXPECTED
