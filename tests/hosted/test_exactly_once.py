"""Exactly once, in order, after every fault the server injects on a hosted task stream.

The hosted stream has no ids and no replay: after a drop the client re-reads
``GET /tasks/{id}`` and hands out what the task's own history holds that it
had not handed out. So what a user's loop sees is checked against that very
history, read raw: the statuses (repeats folded), the log lines, the output.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import inferencesh
from inferencesh import Client, TaskUpdate
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import (
    assert_exactly_once,
    flux,
    fold,
    history,
    lines_text,
    log_text,
    make_client,
    server_task,
    sleep,
    stream_requests,
    wait_terminal,
)

#: (dialect, stream_format) for the fault tests: both wire formats, the dialect pinned and detected.
FORMATS = [("hosted", "ndjson"), ("auto", "sse")]
FORMAT_IDS = ["ndjson", "sse"]
#: Objects sent on a connection before the fault: among the setup statuses, and among the 20 step lines.
AFTERS = [2, 12]


@pytest.fixture(params=FORMATS, ids=FORMAT_IDS)
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    dialect, fmt = request.param
    with make_client(server, dialect, fmt, reconcile_interval=0.5) as made:
        yield made


def _run(client: Client, config: dict[str, Any], timeout: float = 20) -> tuple[list[TaskUpdate], str]:
    with client.run(config, stream=True, timeout=timeout) as stream:
        updates = list(stream)
    assert stream.last_event_id is None
    return updates, stream.task_id


def _recoveries(server: LocalServer, task_id: str) -> int:
    """How often the client re-read the task (``GET /tasks/{id}``): once per drop or reconcile.

    Call it before the test reads the task itself.
    """
    return sum(r.method == "GET" and r.path == f"/tasks/{task_id}" for r in server.requests)


def _dropped(server: LocalServer, task_id: str) -> bool:
    """Whether the stream really dropped: it reopened, or re-read the task (call before reading it)."""
    return len(stream_requests(server, task_id)) >= 2 or _recoveries(server, task_id) >= 1


@pytest.mark.parametrize("after", AFTERS)
@pytest.mark.parametrize("kind", ["close", "reset", "cut", "torn"])
def test_every_drop_is_recovered_exactly_once(server: LocalServer, client: Client, kind: str, after: int) -> None:
    updates, task_id = _run(client, flux(faults=[{"kind": kind, "after": after}]))
    assert _dropped(server, task_id)
    task = server_task(server, task_id)
    assert_exactly_once(updates, task)
    assert len(task["logs"][-1]["content"].splitlines()) > 20  # a task of many lines, dropped in their midst


def test_many_drops_in_one_stream(server: LocalServer, client: Client) -> None:
    faults = [{"kind": kind, "after": 3} for kind in ("close", "cut", "torn", "reset", "close", "cut")]
    updates, task_id = _run(client, flux(faults=faults))
    assert _recoveries(server, task_id) >= 2
    assert_exactly_once(updates, server_task(server, task_id))


def test_a_stall_past_the_idle_limit_is_recovered(server: LocalServer, client: Client) -> None:
    # The client's idle limit is 2 × 0.5 s; the stall (no byte, not even a heartbeat) lasts 1.3 s.
    updates, task_id = _run(client, flux(faults=[{"kind": "stall", "after": 6, "seconds": 1.3}]))
    assert _dropped(server, task_id)
    assert_exactly_once(updates, server_task(server, task_id))


@pytest.mark.parametrize("code", [429, 503])
def test_error_statuses_are_retried_after_retry_after(server: LocalServer, client: Client, code: int) -> None:
    faults = [{"kind": "close", "after": 4}, {"kind": "status", "code": code, "retry_after": 0.3, "times": 2}]
    started = time.monotonic()
    updates, task_id = _run(client, flux(faults=faults))
    elapsed = time.monotonic() - started
    assert_exactly_once(updates, server_task(server, task_id))
    statuses = [r.status for r in stream_requests(server, task_id)]
    assert statuses.count(code) == 2 and statuses[-1] == 200
    assert elapsed >= 0.55  # two waits of Retry-After 0.3 s (backoff alone is at most 0.2 s each)


def test_malformed_object_raises_protocol_error(server: LocalServer, client: Client) -> None:
    seen: list[TaskUpdate] = []
    with pytest.raises(inferencesh.ProtocolError):
        for update in client.run(flux(faults=[{"kind": "malformed", "after": 5}]), stream=True, timeout=20):
            seen.append(update)
    assert seen and [u.event_id for u in seen] == list(range(1, len(seen) + 1))
    task_id = seen[0].task_id
    assert not _dropped(server, task_id)  # not resumed
    # What came before the broken object came once, in order: a prefix of the history.
    task = wait_terminal(server, task_id)
    statuses = fold(u.status for u in seen)
    assert statuses == history(task)[: len(statuses)]
    assert log_text(task).startswith(lines_text(line for u in seen for line in u.logs))


def test_a_mute_stream_ends_promptly_once_the_task_ended(server: LocalServer, client: Client) -> None:
    # After the opening snapshot and one object, heartbeats only, for as long as the client stays:
    # no drop the client could notice. The task ends meanwhile (about 0.35 s); only the reconcile
    # (0.5 s without news) finds that out, well before the 5 s deadline.
    started = time.monotonic()
    updates, task_id = _run(client, flux(faults=[{"kind": "mute", "after": 2}]), timeout=5)
    elapsed = time.monotonic() - started
    assert _recoveries(server, task_id) >= 1
    assert_exactly_once(updates, server_task(server, task_id))
    assert elapsed < 2.5


def test_every_connection_mute_is_reconciled_each_time(server: LocalServer, client: Client) -> None:
    # Every connection goes mute after its snapshot and one object; the task runs 1.3 s.
    updates, task_id = _run(client, sleep(1.3, faults=[{"kind": "mute", "after": 2, "times": -1}]), timeout=10)
    assert _recoveries(server, task_id) >= 2 and len(stream_requests(server, task_id)) >= 2
    assert_exactly_once(updates, server_task(server, task_id))


@pytest.mark.parametrize(
    ("dialect", "fmt"),
    [
        ("hosted", "ndjson"),
        ("hosted", "sse"),
        ("auto", "ndjson"),
        ("auto", "sse"),  # comments alone decide nothing: the undecided stream is re-read too
    ],
)
def test_a_stream_mute_from_its_first_byte_on_a_finished_task_ends(server: LocalServer, dialect: str, fmt: str) -> None:
    with make_client(server, dialect, fmt, reconcile_interval=0.5) as client:
        echo = {"app": "infsh/echo", "input": {"x": 1, "_faults": [{"kind": "mute", "times": -1}]}}
        accepted = client.run(echo, wait=False)
        assert wait_until(lambda: server_task(server, accepted.id)["status"] == 10, timeout=5)
        started = time.monotonic()
        with client.tasks.stream(accepted.id, timeout=2.5) as stream:
            updates = list(stream)
        elapsed = time.monotonic() - started
    assert_exactly_once(updates, server_task(server, accepted.id))
    assert updates[-1].output == {"x": 1}
    assert elapsed < 2  # the reconcile interval (0.5 s), and the time to read the task


@pytest.fixture(scope="module")
def reference(server: LocalServer) -> list[tuple[str, tuple[str, ...]]]:
    """What a user sees of ``sleep(0.8)`` without faults: (status, log lines) per update."""
    with make_client(server, "hosted", "ndjson") as client:
        return [(str(u.status), u.logs) for u in client.run(sleep(0.8), stream=True, timeout=20)]


@pytest.mark.parametrize(
    "faults",
    [
        [{"kind": "close", "after": 2}, {"kind": "close", "after": 3}],
        [{"kind": "cut", "after": 2}, {"kind": "reset", "after": 4}, {"kind": "torn", "after": 3}],
        [{"kind": "mute", "after": 2}],
    ],
    ids=["close", "cut-reset-torn", "mute"],
)
def test_a_repeated_snapshot_adds_no_update(
    server: LocalServer, client: Client, faults: list[dict[str, Any]], reference: list[tuple[str, tuple[str, ...]]]
) -> None:
    # infsh/sleep logs only with its status changes; its progress ticks change nothing a TaskDTO shows.
    # So however the objects are cut into connections, a user sees what a run without faults shows.
    assert [status for status, _ in reference] == ["received", "running", "completed"]
    updates, task_id = _run(client, sleep(0.8, faults))
    assert len(stream_requests(server, task_id)) >= 2  # a reconnect opened with the whole task again
    assert_exactly_once(updates, server_task(server, task_id))
    assert [(str(u.status), u.logs) for u in updates] == reference
