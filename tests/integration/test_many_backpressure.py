"""stream_many under a slow consumer and an early break; run_many's cancel_task_on_abort.

The memory test runs the server in a process of its own (``infsh serve``), so
the RSS measured is the client's alone: the server keeps every event of its
tasks, which would drown the client's share in one process.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import inferencesh
from inferencesh import Client, TaskStatus, inference
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import SECRET

LONG = 500  # app seconds: 100 s at this module's speed 5, so no task here ends by itself

#: What a 50 ms/update consumer of eight fast streams may add to the client's RSS in 5 s. With the
#: channel bounded it adds well under 1 MiB; when readers queued every update it added 48-74 MiB (and on).
RSS_GROWTH_BOUND = 24 * 2**20


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=5, heartbeat=0.5, retry_ms=20) as running:
        yield running


def sleep(seconds: float = LONG) -> dict[str, Any]:
    return {"app": "infsh/sleep", "input": {"seconds": seconds}}


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("inferencesh-many", "inferencesh-stream"))]


def own_sockets(port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``port`` that are still established."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


@pytest.fixture(autouse=True)
def no_leaks(server: LocalServer) -> Iterator[None]:
    yield
    assert wait_until(lambda: server.open_streams == 0), f"{server.open_streams} streams still open"
    assert reader_threads() == []


# -- a slow consumer ------------------------------------------------------------


@pytest.fixture()
def server_process() -> Iterator[str]:
    """``infsh serve`` on a free port in a child process; yields its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "inferencesh", "serve", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        url = None
        for line in child.stderr:  # uvicorn says where it listens
            found = re.search(r"running on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "infsh serve did not start"
        threading.Thread(target=child.stderr.read, name="test-drain", daemon=True).start()
        yield url
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_a_slow_consumer_keeps_the_clients_memory_flat(server_process: str) -> None:
    process = psutil.Process()
    configs = [{"app": "infsh/count", "input": {"n": 1_000_000}} for _ in range(8)]  # minutes of updates
    with inference(api_key=SECRET, base_url=server_process) as client:
        merged = client.stream_many(configs)
        consumed = 0
        start = base = peak = 0.0
        for _ in merged:
            consumed += 1
            now = time.monotonic()
            if consumed == 1:
                start = now
            elif not base and now - start >= 1.0:  # every stream open and flowing, buffers warm
                base = peak = process.memory_info().rss
            elif base:
                peak = max(peak, process.memory_info().rss)
                if now - start >= 6.0:
                    break
            time.sleep(0.05)  # the consumer's own work: 50 ms per update, far slower than the streams
        growth = peak - base
        print(f"\nslow consumer: {consumed} updates, RSS {base / 2**20:.1f} -> {peak / 2**20:.1f} MiB")
        assert growth < RSS_GROWTH_BOUND, f"RSS grew {growth / 2**20:.1f} MiB in 5 s"
        assert reader_threads() == []


# -- break with the iterator still held -------------------------------------------


@pytest.mark.parametrize("how", ["break", "exception"])
def test_leaving_the_loop_closes_everything_while_the_iterator_is_held(
    client: Client, server: LocalServer, how: str
) -> None:
    merged = client.stream_many([sleep() for _ in range(5)])
    ids: set[str] = set()
    during: set[int] = set()
    try:
        for _, update in merged:
            ids.add(update.task_id)
            if wait_until(lambda: server.open_streams == 5, timeout=10):
                during = own_sockets(server.port)
                if how == "break":
                    break
                raise RuntimeError("user code failed")
    except RuntimeError:
        assert how == "exception"
    # `merged` is still referenced: leaving the loop alone must have closed and joined everything.
    assert len(during) >= 5
    assert reader_threads() == []
    assert len(own_sockets(server.port)) <= len(during) - 5  # the client's own stream sockets are gone
    assert wait_until(lambda: server.open_streams == 0, timeout=2)
    assert list(merged) == []  # iterated once; nothing was read on
    assert client.tasks.get(next(iter(ids))).status is TaskStatus.RUNNING  # closing leaves the tasks running
    del merged


def test_close_from_another_thread_ends_the_loop_quietly(client: Client, server: LocalServer) -> None:
    merged = client.stream_many([sleep() for _ in range(3)])
    seen = 0
    for _ in merged:
        seen += 1
        if seen == 1:
            assert wait_until(lambda: server.open_streams == 3, timeout=10)
            threading.Thread(target=merged.close, name="test-closer").start()
    assert reader_threads() == []  # the loop's own thread joined the readers before it ended
    assert wait_until(lambda: server.open_streams == 0, timeout=2)


# -- run_many(cancel_task_on_abort=...) -------------------------------------------


@pytest.mark.parametrize("cancel_task_on_abort", [True, False])
def test_run_many_timeout_cancels_the_tasks_only_with_cancel_task_on_abort(
    client: Client, cancel_task_on_abort: bool
) -> None:
    results = client.run_many(
        [sleep(), sleep()], timeout=0.5, cancel_task_on_abort=cancel_task_on_abort, return_exceptions=True
    )
    assert all(isinstance(r, inferencesh.StreamTimeout) for r in results), results
    ids = [r.task_id for r in results if isinstance(r, inferencesh.StreamTimeout) and r.task_id]
    assert len(set(ids)) == 2
    if cancel_task_on_abort:
        assert wait_until(lambda: all(client.tasks.get(i).status is TaskStatus.CANCELLED for i in ids), timeout=3)
    else:
        assert all(client.tasks.get(i).status is TaskStatus.RUNNING for i in ids)
