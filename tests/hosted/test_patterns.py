"""Every task pattern of the README, unchanged, against the hosted dialect, in every client flavour."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import inferencesh
from inferencesh import CancelToken, Client, Progress, Task, TaskStatus, TaskUpdate
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import (
    SPEED,
    assert_exactly_once,
    flux,
    history,
    log_text,
    server_status,
    server_task,
    sleep,
    stream_requests,
)

ECHO = {"app": "infsh/echo", "input": {"hello": "world", "n": [1, 2]}}
FAIL = {"app": "infsh/fail", "input": {"message": "out of cheese"}}


def test_run_returns_the_finished_task(server: LocalServer, client: Client) -> None:
    task = client.run(flux(steps=3))
    assert isinstance(task, Task)
    assert task.status == "completed" and task.status is TaskStatus.COMPLETED and task.is_terminal
    raw = server_task(server, task.id)
    assert task.output == raw["output"] and task.output["image"].startswith(f"{server.url}/files/")
    assert task.raise_for_status() is task
    assert "".join(line + "\n" for line in task.logs) == log_text(raw)
    assert client.run(ECHO).output == ECHO["input"]


def test_run_of_a_failed_task_raises_on_output(server: LocalServer, client: Client) -> None:
    task = client.run(FAIL)
    assert task.status == "failed" and task.error == "out of cheese"
    with pytest.raises(inferencesh.TaskFailed) as caught:
        task.output  # noqa: B018 - the property raises
    assert caught.value.task_id == task.id and caught.value.error == "out of cheese"
    with pytest.raises(inferencesh.TaskFailed):
        task.raise_for_status()
    assert task.raw_output is None
    assert server_status(server, task.id) == "failed"


def test_run_of_a_cancelled_task_raises_on_output(server: LocalServer, client: Client) -> None:
    seen = len(server.requests)
    cancelled: list[Task] = []

    def cancel_once_streaming() -> None:
        def opened() -> Any:
            return next((r for r in server.requests[seen:] if r.path.endswith("/stream")), None)

        assert wait_until(opened, timeout=10)
        cancelled.append(client.tasks.cancel(opened().path.split("/")[2]))

    helper = threading.Thread(target=cancel_once_streaming)
    helper.start()
    task = client.run(sleep(60), timeout=20)
    helper.join()
    assert cancelled and cancelled[0].status is TaskStatus.CANCELLING and cancelled[0].id == task.id
    assert task.status == "cancelled"
    with pytest.raises(inferencesh.TaskCancelled):
        task.output  # noqa: B018 - the property raises
    assert server_status(server, task.id) == "cancelled"


def test_run_without_waiting_returns_the_accepted_task(server: LocalServer, client: Client) -> None:
    task = client.run(flux(steps=2), wait=False)
    assert isinstance(task, Task) and task.id.startswith("tsk_")
    assert task.status == "received" and not task.is_terminal
    assert wait_until(lambda: client.tasks.get(task.id).status == "completed", timeout=10)
    assert client.tasks.get(task.id).output == server_task(server, task.id)["output"]
    assert stream_requests(server, task.id) == []  # nothing was streamed


def test_stream_yields_updates_in_order(server: LocalServer, client: Client) -> None:
    statuses: list[str] = []
    outputs: list[Any] = []
    updates: list[TaskUpdate] = []
    for update in client.run(flux(steps=4), stream=True):  # the README loop, word for word
        updates.append(update)
        statuses.append(f"{update.status}")
        if update.progress:
            assert 0 <= update.progress.current <= update.progress.total
        for line in update.logs:
            assert isinstance(line, str)
        if update.status == "completed":
            outputs.append(update.output)
    assert statuses[0] == "received" and statuses[-1] == "completed"
    assert [s for s in dict.fromkeys(statuses)] == [
        "received", "queued", "scheduled", "preparing", "serving", "setting_up", "running", "uploading", "completed"
    ]  # fmt: skip
    assert len(outputs) == 1 and outputs[0]["image"].startswith(f"{server.url}/files/")
    assert_exactly_once(updates, server_task(server, updates[0].task_id))


def test_stream_asks_for_the_configured_format(server: LocalServer, client: Client) -> None:
    accept = inferencesh._dialects.ACCEPT[client.settings.stream_format]
    with client.run(ECHO, stream=True) as stream:
        assert [u.status for u in stream][-1] == "completed"
    assert [r.accept for r in stream_requests(server, stream.task_id)] == [accept]


def test_task_stream_members(server: LocalServer, client: Client) -> None:
    with client.run(flux(steps=5), stream=True) as stream:
        assert stream.status is None and stream.result is None and stream.duration is None
        updates = list(stream)
    assert stream.task_id == updates[0].task_id
    assert stream.status == "completed" and stream.result is updates[-1]
    assert stream.result.output == server_task(server, stream.task_id)["output"]
    assert stream.progress == Progress(5, 5)
    assert stream.logs == [line for u in updates for line in u.logs]
    assert "".join(line + "\n" for line in stream.logs) == log_text(server_task(server, stream.task_id))
    assert stream.duration is not None and 0 <= stream.duration < 10
    assert stream.last_event_id is None  # HOSTED.md: the stream sends no ids
    assert list(stream) == []  # iterated once


def test_tasks_get_cancel_stream(server: LocalServer, client: Client) -> None:
    accepted = client.run(sleep(60), wait=False)
    updates: list[TaskUpdate] = []
    with client.tasks.stream(accepted.id) as stream:
        for update in stream:
            updates.append(update)
            if update.status == "running" and len(updates) == 2:
                assert client.tasks.get(accepted.id).status == "running"
                answer = client.tasks.cancel(accepted.id)
                assert answer.status is TaskStatus.CANCELLING and answer.id == accepted.id
    assert stream.status == "cancelled" and stream.result is updates[-1]
    assert [u.status for u in updates] == ["received", "running", "cancelling", "cancelled"]
    assert_exactly_once(updates, server_task(server, accepted.id))
    task = client.tasks.get(accepted.id)
    assert task.status == "cancelled" and task.is_terminal
    with pytest.raises(inferencesh.ConflictError):
        client.tasks.cancel(accepted.id)
    # A finished task streams its whole history at once, then ends.
    replay = list(client.tasks.stream(accepted.id, last_event_id=None))
    assert_exactly_once(replay, server_task(server, accepted.id))


def test_timeout_raises_stream_timeout(server: LocalServer, client: Client) -> None:
    started = time.monotonic()
    with pytest.raises(inferencesh.StreamTimeout) as caught:
        for _ in client.run(sleep(60), stream=True, timeout=0.3):
            pass
    assert 0.3 <= time.monotonic() - started < 2
    assert isinstance(caught.value, TimeoutError)
    task_id = [r.path.split("/")[2] for r in server.requests if r.path.endswith("/stream")][-1]
    assert server_status(server, task_id) == "running"  # a timeout alone leaves the task running
    client.tasks.cancel(task_id)


def test_cancel_token_stops_the_stream(server: LocalServer, client: Client) -> None:
    token = CancelToken()
    seen: list[TaskUpdate] = []
    started = time.monotonic()
    with pytest.raises(inferencesh.Cancelled):
        for update in client.run(sleep(60), stream=True, cancel=token):
            seen.append(update)
            if update.status == "running":
                token.cancel_after(0.2)
    assert time.monotonic() - started < 3
    assert seen and seen[-1].status == "running"
    assert server_status(server, seen[0].task_id) == "running"
    client.tasks.cancel(seen[0].task_id)


@pytest.mark.parametrize("abort", ["timeout", "cancel"])
def test_cancel_task_on_abort_cancels_on_the_server(server: LocalServer, client: Client, abort: str) -> None:
    token = CancelToken()
    token.cancel_after(0.3)
    options: dict[str, Any] = {"timeout": 0.3} if abort == "timeout" else {"cancel": token}
    stream = client.run(sleep(60), stream=True, cancel_task_on_abort=True, **options)
    error = inferencesh.StreamTimeout if abort == "timeout" else inferencesh.Cancelled
    with pytest.raises(error):
        for _ in stream:
            pass
    # The hosted cancel passes through "cancelling"; the task ends "cancelled" once the app stopped.
    assert wait_until(lambda: server_status(server, stream.task_id) == "cancelled", timeout=5)
    assert history(server_task(server, stream.task_id))[-3:] == ["running", "cancelling", "cancelled"]


def test_run_many_and_stream_many(server: LocalServer, client: Client) -> None:
    configs = [flux(steps=3), ECHO, FAIL, sleep(0.05)]
    results = client.run_many(configs, max_workers=4, return_exceptions=True)
    assert isinstance(results[0], Task) and results[0].output["image"].endswith(".png")
    assert isinstance(results[1], Task) and results[1].output == ECHO["input"]
    assert isinstance(results[2], inferencesh.TaskFailed) and results[2].error == "out of cheese"
    assert isinstance(results[3], Task) and results[3].output == {"slept": 0.05 * SPEED}
    with pytest.raises(inferencesh.TaskFailed):
        client.run_many([ECHO, FAIL])

    by_index: dict[int, list[TaskUpdate]] = {}
    for index, update in client.stream_many(configs, timeout=20):
        by_index.setdefault(index, []).append(update)
    assert sorted(by_index) == [0, 1, 2, 3]
    for updates in by_index.values():
        assert_exactly_once(updates, server_task(server, updates[0].task_id))
    assert by_index[2][-1].status == "failed" and by_index[2][-1].error == "out of cheese"


def test_progress_bars_do_not_get_in_the_way(
    server: LocalServer, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    task = client.run(flux(steps=3), progress=True)
    assert task.status == "completed"
    updates = list(client.run(flux(steps=3), stream=True, progress="always"))
    assert_exactly_once(updates, server_task(server, updates[0].task_id))
    drawn = capsys.readouterr().err
    assert "3/3" in drawn and "completed" in drawn
