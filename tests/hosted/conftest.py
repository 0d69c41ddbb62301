"""The public client against the local server's hosted dialect (HOSTED.md), over real sockets.

One ``LocalServer(dialect="hosted")`` per module; clients come from
``tests.helpers.quick_client`` with the dialect, stream format and reconcile
interval under test swapped into their settings. What the server really did
is read raw, with ``requests`` and HOSTED.md's own status table, never with
the client under test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional

import attrs
import pytest
import requests

from inferencesh import Client, TaskUpdate
from inferencesh.server import LocalServer
from tests.helpers import quick_client, wait_until

SECRET = "inf_hosted_dialect_test_key"
#: Server speed: flux-schnell with 20 steps takes about 0.2 s (each delay of an app is divided by it).
SPEED = 40
#: Server heartbeat (seconds of silence before a heartbeat object / comment).
HEARTBEAT = 0.2

#: HOSTED.md "Status numbers", written out here so that the client's own table is what is tested.
HOSTED_NAMES = {
    0: "unknown",
    1: "received",
    2: "queued",
    3: "scheduled",  # "dispatched", the hosted name of the same status (TaskStatus.DISPATCHED is SCHEDULED)
    4: "preparing",
    5: "serving",
    6: "setting_up",
    7: "running",
    8: "cancelling",
    9: "uploading",
    10: "completed",
    11: "failed",
    12: "cancelled",
    13: "rejected",
}
HOSTED_TERMINAL = {10, 11, 12, 13}

#: (dialect, stream_format) pairs: the default, both formats, "hosted" pinned and "auto".
FLAVOURS = [("auto", "auto"), ("hosted", "ndjson"), ("auto", "sse"), ("hosted", "sse")]
FLAVOUR_IDS = [f"{dialect}-{fmt}" for dialect, fmt in FLAVOURS]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One hosted-dialect server per module: short heartbeats."""
    with LocalServer(dialect="hosted", speed=SPEED, heartbeat=HEARTBEAT) as running:
        yield running


def make_client(
    server: LocalServer, dialect: str = "auto", stream_format: str = "auto", reconcile_interval: float = 30.0
) -> Client:
    """``quick_client`` (fast reconnects, 1 s idle limit) reading ``dialect`` / ``stream_format``."""
    client = quick_client(server.url, SECRET)
    client.settings = attrs.evolve(
        client.settings, dialect=dialect, stream_format=stream_format, reconcile_interval=reconcile_interval
    )
    return client


@pytest.fixture(params=FLAVOURS, ids=FLAVOUR_IDS)
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    """A quick client in each flavour (dialect × stream format)."""
    dialect, fmt = request.param
    with make_client(server, dialect, fmt) as made:
        yield made


@pytest.fixture()
def plain(server: LocalServer) -> Iterator[Client]:
    """A quick client with the default settings (dialect and stream format "auto")."""
    with make_client(server) as made:
        yield made


# -- what the server holds, read raw ---------------------------------------------------------


def server_task(server: LocalServer, task_id: str) -> dict[str, Any]:
    """``GET /tasks/{id}`` with plain requests: the TaskDTO out of its legacy envelope."""
    answer = requests.get(f"{server.url}/tasks/{task_id}", timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    data: dict[str, Any] = body["data"]
    return data


def server_status(server: LocalServer, task_id: str) -> str:
    """The task's current status name, read raw with HOSTED.md's table."""
    return HOSTED_NAMES[server_task(server, task_id)["status"]]


def fold(values: Iterable[Any]) -> list[str]:
    """``values`` as strings with consecutive repeats folded into one."""
    folded: list[str] = []
    for value in values:
        text = str(value)
        if not folded or folded[-1] != text:
            folded.append(text)
    return folded


def history(task: dict[str, Any]) -> list[str]:
    """The statuses of a raw TaskDTO's ``events``, named with HOSTED.md's table, repeats folded."""
    return fold(HOSTED_NAMES[event["status"]] for event in task["events"])


def log_text(task: dict[str, Any]) -> str:
    """Every log record's content, in record order."""
    return "".join(record["content"] for record in task["logs"])


def lines_text(lines: Iterable[str]) -> str:
    """Log lines as the records hold them: each ends with a newline."""
    return "".join(line + "\n" for line in lines)


def stream_requests(server: LocalServer, task_id: str) -> list[Any]:
    """The server's records of the stream requests of one task."""
    return [r for r in server.requests if r.path == f"/tasks/{task_id}/stream"]


def flux(
    steps: int = 20, faults: Optional[Sequence[dict[str, Any]]] = None, prompt: str = "a red fox"
) -> dict[str, Any]:
    """A flux-schnell config (one tqdm log line per step), with ``_faults`` when given."""
    task_input: dict[str, Any] = {"prompt": prompt, "steps": steps}
    if faults:
        task_input["_faults"] = list(faults)
    return {"app": "infsh/flux-schnell", "input": task_input}


def sleep(seconds: float, faults: Optional[Sequence[dict[str, Any]]] = None) -> dict[str, Any]:
    """An ``infsh/sleep`` config running ``seconds`` real seconds on the module's server (one tick per app second)."""
    task_input: dict[str, Any] = {"seconds": seconds * SPEED}
    if faults:
        task_input["_faults"] = list(faults)
    return {"app": "infsh/sleep", "input": task_input}


def assert_exactly_once(updates: Sequence[TaskUpdate], task: dict[str, Any]) -> None:
    """The updates a user's loop saw are the task's own history, each status and line once, in order.

    ``task`` is the raw TaskDTO once terminal: its ``events`` (statuses, repeats
    folded) and its log records are what the loop must have seen, its output
    what the last update carries.
    """
    assert task["status"] in HOSTED_TERMINAL
    assert [u.event_id for u in updates] == list(range(1, len(updates) + 1))
    assert [u.is_terminal for u in updates] == [False] * (len(updates) - 1) + [True]
    assert fold(u.status for u in updates) == history(task)
    assert lines_text(line for u in updates for line in u.logs) == log_text(task)
    final = updates[-1]
    assert final.status == HOSTED_NAMES[task["status"]]
    if final.status == "completed":
        assert final.output == task["output"]
    else:
        assert final.output is None


def wait_terminal(server: LocalServer, task_id: str, timeout: float = 10) -> dict[str, Any]:
    """The raw TaskDTO once terminal (``wait_until`` on ``GET /tasks/{id}``)."""
    assert wait_until(lambda: server_task(server, task_id)["status"] in HOSTED_TERMINAL, timeout=timeout)
    return server_task(server, task_id)
