"""How hosted answers are read: the status table, update ids, delta output, tqdm progress, error codes."""

from __future__ import annotations

from typing import Any

import pytest

import inferencesh
from inferencesh import Client, Progress, TaskStatus, TaskUpdate
from inferencesh.server import LocalServer

from .conftest import (
    HEARTBEAT,
    SPEED,
    assert_exactly_once,
    flux,
    history,
    make_client,
    server_task,
    sleep,
    wait_terminal,
)

# -- statuses -------------------------------------------------------------------------------


def test_hosted_codes_are_read_with_the_hosted_table(server: LocalServer, client: Client) -> None:
    updates = list(client.run(flux(steps=3), stream=True))
    raw = server_task(server, updates[0].task_id)
    codes = [event["status"] for event in raw["events"]]
    assert codes == [1, 2, 3, 4, 5, 6, 7, 9, 10]  # the hosted numbering: 9 is uploading, 3 dispatched
    seen = list(dict.fromkeys(u.status for u in updates))
    assert seen == [
        TaskStatus.RECEIVED,
        TaskStatus.QUEUED,
        TaskStatus.DISPATCHED,
        TaskStatus.PREPARING,
        TaskStatus.SERVING,
        TaskStatus.SETTING_UP,
        TaskStatus.RUNNING,
        TaskStatus.UPLOADING,
        TaskStatus.COMPLETED,
    ]
    assert seen[2] is TaskStatus.SCHEDULED and TaskStatus["DISPATCHED"] is seen[2]
    assert [u.status for u in updates if u.status == "scheduled"] == [TaskStatus.SCHEDULED]  # code 3, "dispatched"
    assert seen[2].code == 3 and seen[7].code == 8  # .code stays PROTOCOL.md's
    assert updates[-1].is_terminal and updates[-1].status.code == 10
    assert_exactly_once(updates, raw)


def test_a_hosted_cancel_passes_through_cancelling(server: LocalServer, client: Client) -> None:
    updates: list[TaskUpdate] = []
    with client.run(sleep(60), stream=True, timeout=10) as stream:
        for update in stream:
            updates.append(update)
            if update.status == "running" and not update.is_terminal and len(updates) == 2:
                assert stream.cancel_task().status is TaskStatus.CANCELLING
    assert [u.status for u in updates] == [
        TaskStatus.RECEIVED,
        TaskStatus.RUNNING,
        TaskStatus.CANCELLING,
        TaskStatus.CANCELLED,
    ]
    assert not updates[2].is_terminal and updates[3].is_terminal
    assert [u.logs for u in updates[2:]] == [("Cancelling task",), ("Task cancelled",)]
    assert_exactly_once(updates, server_task(server, stream.task_id))
    assert history(server_task(server, stream.task_id)) == ["received", "running", "cancelling", "cancelled"]


def test_update_ids_count_the_updates_and_no_stream_id_is_kept(server: LocalServer, client: Client) -> None:
    with client.run(flux(steps=6, faults=[{"kind": "close", "after": 5}]), stream=True) as stream:
        ids = []
        for update in stream:
            ids.append(update.event_id)
            assert stream.last_event_id is None
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 9  # at least one per status


@pytest.mark.parametrize(
    ("dialect", "fmt"), [("hosted", "ndjson"), ("auto", "auto")], ids=["hosted-ndjson", "auto-sse"]
)
def test_connection_lost_carries_no_event_id(dialect: str, fmt: str) -> None:
    # A server of its own, stopped under a live stream: every reconnect and every re-read then fails.
    with LocalServer(dialect="hosted", speed=SPEED, heartbeat=HEARTBEAT) as own:
        lost = make_client(own, dialect, fmt)
        stream = lost.run(sleep(60), stream=True, timeout=20)
        seen = [next(stream), next(stream)]
    assert [(u.status, u.event_id) for u in seen] == [("received", 1), ("running", 2)]
    with pytest.raises(inferencesh.ConnectionLost) as caught:
        for update in stream:
            seen.append(update)
    assert len(seen) == 2
    assert caught.value.last_event_id is None  # PROTOCOL.md would have said 2; hosted streams have no ids
    assert caught.value.task_id == seen[0].task_id
    assert stream.last_event_id is None
    lost.close()


# -- progress from tqdm lines (delta output: test_llm.py) -------------------------------------


def test_progress_comes_from_tqdm_log_lines(server: LocalServer, client: Client) -> None:
    steps = 12
    with client.run(flux(steps=steps), stream=True) as stream:
        updates = list(stream)
    assert_exactly_once(updates, server_task(server, stream.task_id))
    expected: Any = None
    progressed = []
    for update in updates:
        for line in update.logs:
            if "%|" in line:
                expected = Progress(int(line.split("|")[2].split("/")[0]), steps)
        assert update.progress == expected
        if update.progress is not None:
            progressed.append(update.progress.current)
    assert progressed == sorted(progressed) and progressed[-1] == steps
    assert len(set(progressed)) == steps  # every step seen
    assert stream.progress == Progress(steps, steps) and stream.progress.fraction == 1.0


def test_an_app_without_tqdm_lines_has_no_progress(client: Client) -> None:
    updates = list(client.run(sleep(0.1), stream=True))
    assert [u.progress for u in updates] == [None] * len(updates)


# -- errors ------------------------------------------------------------------------------------


def test_unknown_app_is_not_found_with_its_code(client: Client) -> None:
    with pytest.raises(inferencesh.NotFoundError) as caught:
        client.run({"app": "infsh/no-such-app", "input": {}})
    assert caught.value.status_code == 404 and caught.value.code == "not_found"
    assert caught.value.type == "https://inference.sh/errors/not_found"
    assert "no-such-app" in caught.value.detail


def test_unknown_task_is_not_found(client: Client) -> None:
    with pytest.raises(inferencesh.NotFoundError) as caught:
        client.tasks.get("tsk_000000000000000000000000")
    assert caught.value.code == "not_found"
    with pytest.raises(inferencesh.NotFoundError):
        list(client.tasks.stream("tsk_000000000000000000000000"))
    with pytest.raises(inferencesh.NotFoundError):
        client.tasks.cancel("tsk_000000000000000000000000")


def test_other_error_codes_are_kept(server: LocalServer, client: Client) -> None:
    with pytest.raises(inferencesh.APIError) as invalid:
        client.run({"app": "infsh/flux-schnell", "input": {"steps": 3}})
    assert invalid.value.status_code == 422 and invalid.value.code == "invalid_input"
    task = client.run({"app": "infsh/echo", "input": {}})
    wait_terminal(server, task.id)
    with pytest.raises(inferencesh.ConflictError) as conflict:
        client.tasks.cancel(task.id)
    assert conflict.value.code == "conflict"
