"""The streaming core against the real local server: updates, bookkeeping, release."""

from __future__ import annotations

import gc
import io
import time

import psutil
import pytest
import requests
from PIL import Image

import inferencesh
from inferencesh import Client, TaskStatus, TaskUpdate
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import flux

FLOW = [
    "received",
    "queued",
    "scheduled",
    "preparing",
    "serving",
    "setting_up",
    "running",
    "uploading",
    "completed",
]


def test_stream_yields_typed_updates_in_order(client: Client) -> None:
    updates = list(client.run(flux(), stream=True))
    assert all(isinstance(u, TaskUpdate) for u in updates)
    assert [u.event_id for u in updates] == list(range(1, len(updates) + 1))
    seen = [s for i, s in enumerate(u.status for u in updates) if i == 0 or updates[i - 1].status != s]
    assert [str(s) for s in seen] == FLOW
    last = updates[-1]
    assert last.is_terminal and last.status == "completed" and last.status is TaskStatus.COMPLETED
    image = Image.open(io.BytesIO(requests.get(last.output["image"], timeout=10).content))
    assert image.format == "PNG"
    running = [u for u in updates if u.status == "running"]
    assert any(u.progress is not None and 0.0 < u.progress.fraction <= 1.0 for u in running)
    assert any(u.partial_output is not None for u in running)


def test_duration_spans_the_first_update_to_the_terminal_one(client: Client) -> None:
    stream = client.run({"app": "infsh/sleep", "input": {"seconds": 40}}, stream=True)  # 0.2 s at speed 200
    stamps = [time.monotonic() for _ in stream]
    assert stream.duration is not None
    assert abs(stream.duration - (stamps[-1] - stamps[0])) < 0.05
    assert stream.duration > 0.1


def test_task_stream_keeps_the_bookkeeping(client: Client) -> None:
    with client.run(flux(), stream=True) as stream:
        assert stream.task_id.startswith("tsk_")
        assert stream.result is None and stream.duration is None
        collected: list[str] = []
        first_seen = last_seen = 0.0
        for update in stream:
            last_seen = time.monotonic()
            first_seen = first_seen or last_seen
            collected.extend(update.logs)
    assert stream.logs == collected and collected
    assert stream.status is TaskStatus.COMPLETED
    assert stream.result is not None and stream.result.is_terminal
    # API.md: client-clock seconds from the first update received to the terminal one
    assert stream.duration is not None and abs(stream.duration - (last_seen - first_seen)) < 0.05
    assert stream.progress is not None and stream.progress.current == stream.progress.total
    assert list(stream) == []  # iterated once


def test_blocking_run_returns_the_task(client: Client) -> None:
    task = client.run({"app": "infsh/echo", "input": {"hello": "world"}})
    assert task.status is TaskStatus.COMPLETED
    assert task.output == {"hello": "world"}


def test_wait_false_returns_at_once(client: Client) -> None:
    task = client.run({"app": "infsh/sleep", "input": {"seconds": 50}}, wait=False)
    assert not task.is_terminal
    assert client.tasks.get(task.id).id == task.id
    cancelled = client.tasks.cancel(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    with pytest.raises(inferencesh.TaskCancelled):
        cancelled.output  # noqa: B018


def test_failed_task_in_stream_mode_is_not_an_exception(client: Client) -> None:
    updates = list(client.run({"app": "infsh/fail", "input": {"message": "boom"}}, stream=True))
    assert updates[-1].status == "failed" and updates[-1].error == "boom"


def test_failed_task_in_blocking_mode_is_returned_and_its_output_raises(server: LocalServer, client: Client) -> None:
    before = len(server.requests)
    task = client.run({"app": "infsh/fail", "input": {"message": "boom"}})
    assert task.status is TaskStatus.FAILED and task.error == "boom" and task.logs
    with pytest.raises(inferencesh.TaskFailed) as caught:
        task.output  # noqa: B018
    assert caught.value.error == "boom" and caught.value.task_id == task.id
    with pytest.raises(inferencesh.TaskFailed):
        task.raise_for_status()
    # Built from the stream: the POST and the stream, no extra GET /tasks/{id}.
    assert [r.method for r in server.requests[before:]] == ["POST", "GET"]


def test_blocking_run_task_matches_the_server_task(client: Client) -> None:
    task = client.run(flux("same as the server"))
    stored = client.tasks.get(task.id)
    assert (task.status, task.raw_output, task.logs, task.app, task.input) == (
        stored.status,
        stored.raw_output,
        stored.logs,
        stored.app,
        stored.input,
    )


def test_cancel_task_from_the_stream(client: Client) -> None:
    with client.run({"app": "infsh/sleep", "input": {"seconds": 50}}, stream=True) as stream:
        for update in stream:
            if update.status == "running" and update.progress is not None:
                cancelled = stream.cancel_task()
                assert cancelled.status is TaskStatus.CANCELLED
                break
        assert stream.result is None  # left the loop before the terminal update
    with pytest.raises(inferencesh.ConflictError):
        client.tasks.cancel(stream.task_id)
    with pytest.raises(inferencesh.TaskCancelled):
        client.tasks.get(stream.task_id).output  # noqa: B018


def test_cancel_on_the_server_ends_the_stream_with_a_cancelled_update(client: Client) -> None:
    with client.run({"app": "infsh/sleep", "input": {"seconds": 50}}, stream=True) as stream:
        for update in stream:
            if update.status == "running":
                client.tasks.cancel(stream.task_id)
                break
    rest = list(client.tasks.stream(stream.task_id, last_event_id=stream.last_event_id))
    assert rest[-1].status is TaskStatus.CANCELLED


def test_tasks_stream_resumes_after_an_id(client: Client) -> None:
    task = client.run(flux(), wait=True)
    updates = list(client.tasks.stream(task.id, last_event_id=3))
    assert updates[0].event_id == 4 and updates[-1].is_terminal


def test_tasks_stream_at_the_terminal_id_ends_empty(client: Client) -> None:
    every = list(client.run(flux(), stream=True))
    stream = client.tasks.stream(every[-1].task_id, last_event_id=every[-1].event_id)
    assert list(stream) == []
    assert stream.status is TaskStatus.COMPLETED


def test_status_names_from_the_server_are_understood() -> None:
    with LocalServer(speed=200, status_names=True) as named, inferencesh.inference(base_url=named.url) as client:
        statuses = [u.status for u in client.run(flux(), stream=True)]
    assert statuses[-1] is TaskStatus.COMPLETED and TaskStatus.UNKNOWN not in statuses


def own_sockets(port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``port`` that are still established."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


@pytest.mark.parametrize("how", ["break", "break-held", "exception-held", "close", "with", "gc"])
def test_leaving_early_releases_the_connection(server: LocalServer, client: Client, how: str) -> None:
    # A task that would run for minutes (86400 s at speed 200 is 7 min): only the client can end the stream.
    config = {"app": "infsh/sleep", "input": {"seconds": 86400}}
    baseline = server.open_streams
    during: set[int] = set()

    def opened() -> None:
        assert wait_until(lambda: server.open_streams == baseline + 1, timeout=3.0)
        during.update(own_sockets(server.port))

    if how == "break":
        for _ in client.run(config, stream=True):
            opened()
            break
    elif how == "break-held":
        held = client.run(config, stream=True)
        for _ in held:
            opened()
            break
    elif how == "exception-held":
        held = client.run(config, stream=True)
        with pytest.raises(ZeroDivisionError):
            for _ in held:
                opened()
                1 / 0  # noqa: B018
    elif how == "close":
        stream = client.run(config, stream=True)
        next(stream)
        opened()
        stream.close()
    elif how == "with":
        with client.run(config, stream=True) as stream:
            next(stream)
            opened()
    else:
        stream = client.run(config, stream=True)
        next(stream)
        opened()
        del stream
        gc.collect()
    # Released at once, while a held stream is still referenced: the client's own socket is closed
    # and the server sees the stream end (it would run for minutes otherwise).
    assert during and len(own_sockets(server.port)) < len(during)
    assert wait_until(lambda: server.open_streams <= baseline, timeout=3.0)
    if how == "break-held":
        assert list(held) == []  # iterated once: nothing is read on


def test_the_client_is_reusable_after_many_streams(server: LocalServer, client: Client) -> None:
    for _ in range(20):
        assert list(client.run({"app": "infsh/echo", "input": {}}, stream=True))[-1].is_terminal
    assert wait_until(lambda: server.open_streams == 0)


def test_ctrl_c_in_the_loop_body_cancels_the_task_with_cancel_task_on_abort(client: Client) -> None:
    config = {"app": "infsh/sleep", "input": {"seconds": 30}}
    with pytest.raises(KeyboardInterrupt):
        with client.run(config, stream=True, cancel_task_on_abort=True) as stream:
            for update in stream:
                if update.status == "running":
                    raise KeyboardInterrupt  # as Ctrl-C would, between two reads
    assert wait_until(lambda: client.tasks.get(stream.task_id).status is TaskStatus.CANCELLED)


def test_without_cancel_task_on_abort_the_task_keeps_running(client: Client) -> None:
    config = {"app": "infsh/sleep", "input": {"seconds": 30}}
    with pytest.raises(KeyboardInterrupt):
        with client.run(config, stream=True) as stream:
            for update in stream:
                if update.status == "running":
                    raise KeyboardInterrupt
    assert client.tasks.get(stream.task_id).status is TaskStatus.RUNNING
    client.tasks.cancel(stream.task_id)
