"""``infsh/llm`` on a hosted stream: ``partial_output`` is the output accumulated from ``delta`` events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate

import pytest

from inferencesh import Client
from inferencesh.server import LocalServer

from .conftest import HEARTBEAT, assert_exactly_once, make_client, server_task


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """At full app speed: a word every 30 ms, so the stream is open before the first delta.

    (Deltas are in no TaskDTO: one sent before the stream opened is gone for every client.)
    """
    with LocalServer(dialect="hosted", speed=1, heartbeat=HEARTBEAT) as running:
        yield running


@pytest.fixture(params=[("hosted", "ndjson"), ("auto", "auto")], ids=["hosted-ndjson", "auto-sse"])
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    with make_client(server, *request.param) as made:
        yield made


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


@pytest.mark.parametrize("reasoning", [False, True], ids=["answer", "reasoning"])
def test_partial_output_grows_to_the_final_output(server: LocalServer, client: Client, reasoning: bool) -> None:
    config = {"app": "infsh/llm", "input": {"prompt": "tell me about the sea", "reasoning": reasoning}}
    updates = list(client.run(config, stream=True, timeout=10))
    raw = server_task(server, updates[0].task_id)
    assert_exactly_once(updates, raw)
    final = updates[-1]
    assert final.status == "completed" and final.output == raw["output"]
    partials = [u.partial_output for u in updates[:-1] if u.partial_output is not None]
    # One update per delta, each the concatenation of the deltas so far: reasoning first, then the answer.
    thought = list(accumulate(_words(final.output["reasoning"]))) if reasoning else []
    said = list(accumulate(_words(final.output["response"])))
    assert [p.get("reasoning") for p in partials] == thought + [thought[-1] if thought else None] * len(said)
    assert [p.get("response") for p in partials[len(thought) :]] == said
    assert all("response" not in p for p in partials[: len(thought)])
    assert partials[-1]["usage"] == final.output["usage"] and "usage" not in partials[-2]
    assert final.partial_output == partials[-1]  # the terminal update keeps the whole accumulated output
    first = next(i for i, u in enumerate(updates) if u.partial_output is not None)
    assert [u.partial_output for u in updates[:first]] == [None] * first
    assert len(updates) == first + len(partials) + 1  # nothing but deltas between the first and the end
    assert [str(u.status) for u in updates[first:-1]] == ["running"] * len(partials)


def test_run_returns_the_whole_text(client: Client) -> None:
    task = client.run({"app": "infsh/llm", "input": {"prompt": "hi"}}, timeout=10)
    assert task.output["response"] == 'You said "hi". This answer is simulated: no model is loaded.'


def test_a_drop_mid_answer_still_ends_with_the_whole_output(server: LocalServer, client: Client) -> None:
    # Deltas are in no TaskDTO: those sent while the stream was down are gone, so partial_output may miss
    # words from then on; the statuses, lines and the final output come from the task and stay exact.
    config = {"app": "infsh/llm", "input": {"prompt": "hello there", "_faults": [{"kind": "close", "after": 5}]}}
    updates = list(client.run(config, stream=True, timeout=10))
    raw = server_task(server, updates[0].task_id)
    assert_exactly_once(updates, raw)
    assert updates[-1].output == raw["output"]
    assert updates[-1].output["response"] == 'You said "hello there". This answer is simulated: no model is loaded.'
