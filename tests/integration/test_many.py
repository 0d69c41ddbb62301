"""run_many / stream_many against the local server: order, failures, one deadline, closing, 200 streams."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import inferencesh
from inferencesh import CancelToken, Client, Task, TaskFailed, TaskStatus, TaskUpdate, inference
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import SECRET

LONG = 500  # app seconds: 100 s at this module's speed 5, so it never ends by itself (and ticks only 5 times a second)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """This module's server runs apps at speed 5: tasks left running cost the server little."""
    with LocalServer(speed=5, heartbeat=0.5, retry_ms=20) as running:
        yield running


def sleep(seconds: float = LONG) -> dict[str, Any]:
    return {"app": "infsh/sleep", "input": {"seconds": seconds}}


def echo(value: Any) -> dict[str, Any]:
    return {"app": "infsh/echo", "input": {"value": value}}


def reader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("inferencesh-many", "inferencesh-stream"))]


def stream_gets(server: LocalServer) -> list[str]:
    return [r.path for r in server.requests if r.method == "GET" and r.path.endswith("/stream")]


@pytest.fixture(autouse=True)
def no_leaks(server: LocalServer) -> Iterator[None]:
    """Every test leaves no reader thread and no open stream behind."""
    before = {t.ident for t in threading.enumerate()}
    yield
    assert wait_until(lambda: server.open_streams == 0), f"{server.open_streams} streams still open"
    assert reader_threads() == []
    assert wait_until(lambda: {t.ident for t in threading.enumerate()} - before == set()), threading.enumerate()


# -- run_many -----------------------------------------------------------------


def test_run_many_returns_tasks_in_input_order(client: Client) -> None:
    # The first configs sleep longest, so they finish last: order must come from the input.
    configs = [{"app": "infsh/sleep", "input": {"seconds": 2.5 - 0.5 * i, "i": i}} for i in range(5)]
    tasks = client.run_many(configs, max_workers=5)
    assert [type(t) for t in tasks] == [Task] * 5
    assert [t.input["i"] for t in tasks] == [0, 1, 2, 3, 4]
    assert all(t.status is TaskStatus.COMPLETED for t in tasks)


def test_return_exceptions_puts_each_failure_in_its_slot(client: Client) -> None:
    configs = [echo(0), {"app": "infsh/fail", "input": {"message": "no GPU"}}, echo(2), {"app": "nobody/nothing"}]
    results = client.run_many(configs, return_exceptions=True)
    assert isinstance(results[0], Task) and results[0].output == {"value": 0}
    assert isinstance(results[1], TaskFailed) and results[1].error == "no GPU"
    assert isinstance(results[2], Task) and results[2].output == {"value": 2}
    assert isinstance(results[3], inferencesh.NotFoundError)


def test_first_failure_is_raised_after_the_others_are_cancelled_locally(client: Client, server: LocalServer) -> None:
    configs = [sleep(), sleep(), {"app": "infsh/fail", "input": {"message": "boom"}}, sleep()]
    started = time.monotonic()
    with pytest.raises(TaskFailed, match="boom") as raised:
        client.run_many(configs, max_workers=4)
    assert time.monotonic() - started < 10  # the sleeps would take 100 s
    assert str(raised.value).startswith("config 2 (infsh/fail): ")  # which config failed
    assert (raised.value.index, raised.value.app) == (2, "infsh/fail")  # type: ignore[attr-defined]
    assert server.open_streams == 0 or wait_until(lambda: server.open_streams == 0)


def test_run_many_timeout_is_one_deadline_for_the_batch(client: Client) -> None:
    started = time.monotonic()
    with pytest.raises(inferencesh.StreamTimeout) as caught:
        client.run_many([sleep(), sleep(), sleep()], max_workers=1, timeout=0.5)
    # max_workers=1: three runs one after another would need 3 × 0.5 s with a deadline each.
    assert time.monotonic() - started < 1.4
    assert caught.value.timeout == 0.5


def test_run_many_cancel_token_stops_every_run(client: Client) -> None:
    token = CancelToken()
    token.cancel_after(0.3)
    results = client.run_many([sleep(), sleep(), echo(1)], cancel=token, return_exceptions=True)
    assert isinstance(results[0], inferencesh.Cancelled) and isinstance(results[1], inferencesh.Cancelled)
    assert isinstance(results[2], Task)


def test_a_bad_config_raises_before_anything_is_sent(client: Client, server: LocalServer) -> None:
    server.clear_requests()
    with pytest.raises(inferencesh.UsageError):
        client.run_many([echo(1), {"input": {}}])
    with pytest.raises(inferencesh.UsageError):
        client.stream_many([echo(1), "infsh/echo"])  # type: ignore[list-item]
    with pytest.raises(inferencesh.UsageError):
        client.run_many([echo(1)], max_workers=0)
    assert server.requests == []
    assert client.run_many([]) == []
    assert list(client.stream_many([])) == []


# -- stream_many --------------------------------------------------------------


def test_stream_many_merges_updates_in_arrival_order(client: Client) -> None:
    configs = [sleep(2), echo("fast"), {"app": "infsh/fail", "input": {}}]
    seen: list[tuple[int, TaskUpdate]] = list(client.stream_many(configs))
    by_index: dict[int, list[TaskUpdate]] = {0: [], 1: [], 2: []}
    for index, update in seen:
        by_index[index].append(update)
    for updates in by_index.values():
        assert [u.event_id for u in updates] == list(range(1, len(updates) + 1))
        assert updates[-1].is_terminal and not any(u.is_terminal for u in updates[:-1])
        assert len({u.task_id for u in updates}) == 1
    assert by_index[0][-1].output == {"slept": 2}
    assert by_index[1][-1].output == {"value": "fast"}
    assert by_index[2][-1].status is TaskStatus.FAILED  # a failed task is an update, not an error
    finished = [index for index, update in seen if update.is_terminal]
    assert finished.index(1) < finished.index(0)  # the echo ended first although it came second


@pytest.mark.parametrize("how", ["break", "exception", "close"])
def test_leaving_early_closes_every_stream(client: Client, server: LocalServer, how: str) -> None:
    server.clear_requests()
    configs = [sleep() for _ in range(5)]
    task_ids: list[str] = []
    if how == "break":
        for _, update in client.stream_many(configs):
            task_ids.append(update.task_id)
            if wait_until(lambda: server.open_streams == 5, timeout=10):
                break
    elif how == "exception":
        with pytest.raises(RuntimeError):
            for _, update in client.stream_many(configs):
                task_ids.append(update.task_id)
                if wait_until(lambda: server.open_streams == 5, timeout=10):
                    raise RuntimeError("user code failed")
    else:
        merged = client.stream_many(configs)
        task_ids.append(next(merged)[1].task_id)
        assert wait_until(lambda: server.open_streams == 5, timeout=10)
        merged.close()
    assert reader_threads() == []  # joined before the loop was left
    assert wait_until(lambda: server.open_streams == 0)
    gets = stream_gets(server)
    assert len(gets) == len(set(gets)) == 5  # no reconnect after the close
    assert client.tasks.get(task_ids[0]).status is TaskStatus.RUNNING  # closing leaves the tasks running


def test_breaking_at_once_does_not_retry_the_streams_still_starting(
    client: Client, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A stream closed from another thread before its first event used to retry until ConnectionLost.
    with caplog.at_level(logging.INFO, logger="inferencesh"):
        for _ in range(5):
            for _ in client.stream_many([sleep() for _ in range(8)]):
                break
    retries = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage() or "reconnect" in r.getMessage()]
    assert retries == []


def test_stream_many_timeout_is_one_deadline(client: Client, server: LocalServer) -> None:
    started = time.monotonic()
    with pytest.raises(inferencesh.StreamTimeout) as caught:
        for _ in client.stream_many([sleep(), sleep(), sleep()], max_workers=1, timeout=0.6):
            pass
    assert time.monotonic() - started < 1.5
    assert caught.value.timeout == 0.6


def test_stream_many_cancel_and_cancel_task_on_abort(client: Client) -> None:
    token = CancelToken()
    ids: set[str] = set()
    with pytest.raises(inferencesh.Cancelled):
        for _, update in client.stream_many([sleep(), sleep()], cancel=token, cancel_task_on_abort=True):
            ids.add(update.task_id)
            if len(ids) == 2:
                token.cancel()
    assert wait_until(lambda: all(client.tasks.get(i).status is TaskStatus.CANCELLED for i in ids))


def test_stream_many_raises_the_first_stream_error_and_closes_the_rest(client: Client) -> None:
    with pytest.raises(inferencesh.NotFoundError):
        for _ in client.stream_many([sleep(), sleep(), {"app": "nobody/nothing"}]):
            pass


@pytest.mark.parametrize("call", ["stream_many", "run_many"])
def test_ctrl_c_stops_every_stream_and_with_cancel_task_on_abort_every_task(client: Client, call: str) -> None:
    ids: list[str] = []
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C while blocked waiting
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        if call == "stream_many":
            for _, update in client.stream_many([sleep(), sleep(), sleep()], cancel_task_on_abort=True):
                ids.append(update.task_id)
        else:
            client.run_many([sleep(), sleep(), sleep()], cancel_task_on_abort=True)
    timer.join()
    assert time.monotonic() - started < 5
    assert reader_threads() == []
    if call == "stream_many":
        assert len(set(ids)) == 3
        assert wait_until(lambda: all(client.tasks.get(i).status is TaskStatus.CANCELLED for i in set(ids)))


# -- the pool -----------------------------------------------------------------


def test_the_pool_grows_to_the_work_and_keeps_every_connection(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    with inference(api_key=SECRET, base_url=server.url, pool_maxsize=2) as small:
        small.run(echo(-1))  # the host's pool now exists, at size 2: growing must replace it
        with caplog.at_level(logging.WARNING, logger="urllib3"):
            tasks = small.run_many([echo(i) for i in range(48)], max_workers=16)
            for _ in small.stream_many([echo(i) for i in range(24)]):
                pass
        assert [t.output for t in tasks] == [{"value": i} for i in range(48)]
        assert small.settings.pool_maxsize == 24
        assert not [r for r in caplog.records if "pool is full" in r.getMessage()], caplog.text
    assert wait_until(lambda: server.open_connections == 0)


# -- 200 at once --------------------------------------------------------------


class _Peaks:
    """Samples thread count, RSS and open streams every 10 ms while running."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.threads = self.rss = self.streams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-sampler")

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.01):
            self.threads = max(self.threads, threading.active_count() - 1)  # not the sampler itself
            self.rss = max(self.rss, process.memory_info().rss)
            self.streams = max(self.streams, self.server.open_streams)

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_one_client_carries_200_concurrent_streams(caplog: pytest.LogCaptureFixture) -> None:
    n = 200
    with LocalServer(speed=1, heartbeat=5, retry_ms=100) as server:
        before = {t.ident for t in threading.enumerate()}
        client = inference(api_key=SECRET, base_url=server.url)
        counts = dict.fromkeys(range(n), 0)
        finals: dict[int, TaskUpdate] = {}
        with caplog.at_level(logging.WARNING), _Peaks(server) as peaks:
            started = time.perf_counter()
            for index, update in client.stream_many([sleep(2) for _ in range(n)]):
                counts[index] += 1
                if update.is_terminal:
                    finals[index] = update
            wall = time.perf_counter() - started
        print(
            f"\n200 streams: wall {wall:.2f} s, peak threads {peaks.threads}, "
            f"peak RSS {peaks.rss / 2**20:.0f} MiB (client and server in one process), "
            f"peak open streams {peaks.streams}, updates {sum(counts.values())}"
        )
        assert len(finals) == n and all(u.status is TaskStatus.COMPLETED for u in finals.values())
        assert all(count == 5 for count in counts.values())  # running, 3 ticks... exactly as served
        assert peaks.streams == n  # all 200 open at the same time
        assert wall < 30
        assert peaks.threads - len(before) <= n + 10  # threads this call added (other tests' may linger)
        assert not [r for r in caplog.records if r.name.startswith(("urllib3", "inferencesh"))], caplog.text
        assert reader_threads() == []
        assert wait_until(lambda: server.open_streams == 0)
        client.close()
        assert wait_until(lambda: server.open_connections == 0)
        assert wait_until(lambda: {t.ident for t in threading.enumerate()} - before == set())
