"""Starting, stopping, several servers, and what is left behind (threads, sockets)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import psutil  # type: ignore[import-untyped]
import pytest
import requests

from inferencesh.server import LocalServer

from .helpers import read_stream, run, wait_terminal


def _wait_for(predicate: object, timeout: float = 2.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def _own_sockets_on(port: int) -> list[object]:
    return [c for c in psutil.Process().net_connections(kind="tcp") if c.laddr and c.laddr.port == port]


def test_start_is_fast_and_stop_leaves_nothing() -> None:
    threads_before = set(threading.enumerate())
    started = time.monotonic()
    server = LocalServer(speed=200, heartbeat=0.2).start()
    assert time.monotonic() - started < 1.0
    try:
        assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
        assert len(set(threading.enumerate()) - threads_before) == 1
        session = requests.Session()
        task = run(server.url, "infsh/echo", {})
        assert read_stream(server.url, task["id"], session=session).updates[-1]["status"] == 10
        assert server.open_connections >= 1  # the session keeps its connection
        session.close()
        assert _wait_for(lambda: server.open_connections == 0)
    finally:
        stopping = time.monotonic()
        server.stop()
    assert time.monotonic() - stopping < 1.0
    assert set(threading.enumerate()) == threads_before
    assert server.open_connections == 0
    assert _own_sockets_on(server.port) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    server.stop()  # idempotent


def test_stop_with_open_streams_is_fast_and_ends_them() -> None:
    threads_before = set(threading.enumerate())
    server = LocalServer(speed=1, heartbeat=0.2).start()
    results: list[object] = []

    def follow(task_id: str) -> None:
        results.append(read_stream(server.url, task_id, timeout=10))

    tasks = [run(server.url, "infsh/sleep", {"seconds": 3600})["id"] for _ in range(5)]
    readers = [threading.Thread(target=follow, args=(t,)) for t in tasks]
    for reader in readers:
        reader.start()
    assert _wait_for(lambda: server.open_streams == 5)
    assert server.open_connections >= 5
    stopping = time.monotonic()
    server.stop()
    assert time.monotonic() - stopping < 1.0
    for reader in readers:
        reader.join(5)
    assert time.monotonic() - stopping < 2.0  # the clients saw their streams end at once
    assert len(results) == 5
    assert server.open_streams == 0 and server.open_connections == 0
    assert set(threading.enumerate()) == threads_before
    assert _own_sockets_on(server.port) == []


def test_two_servers_at_once_and_one_after_another() -> None:
    threads_before = set(threading.enumerate())
    with LocalServer(speed=200) as first, LocalServer(speed=200, api_key="k") as second:
        assert first.port != second.port
        a = run(first.url, "infsh/sleep", {"seconds": 20})
        b = run(second.url, "infsh/sleep", {"seconds": 20}, Authorization="Bearer k")
        assert read_stream(first.url, a["id"]).updates[-1]["status"] == 10
        streamed = read_stream(second.url, b["id"], headers={"Authorization": "Bearer k"})
        assert streamed.updates[-1]["status"] == 10
        assert requests.get(f"{first.url}/tasks/{b['id']}", timeout=5).status_code == 404
    for _ in range(3):
        with LocalServer(speed=200, heartbeat=0.05) as server:
            task = run(server.url, "infsh/sleep", {"seconds": 1})
            assert read_stream(server.url, task["id"]).updates[-1]["status"] == 10
            assert wait_terminal(server.url, task["id"])["status"] == 10
    assert set(threading.enumerate()) == threads_before


def test_start_twice_and_url_before_start() -> None:
    server = LocalServer()
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
    with server:
        with pytest.raises(RuntimeError):
            server.start()
    assert "stopped" in repr(server)


def test_busy_port_raises() -> None:
    with LocalServer() as server, pytest.raises(OSError):
        LocalServer(port=server.port).start()


def test_serve_runs_in_the_foreground_until_ctrl_c() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from inferencesh.server import serve; "
        f"serve('127.0.0.1', {port}, speed=1000, heartbeat=0.1, log_level='warning'); "
        "print('returned')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert _wait_for(lambda: _accepts(port), timeout=20)
        task = run(url, "infsh/sleep", {"seconds": 86400})
        opened: list[object] = []
        reader = threading.Thread(
            target=lambda: opened.append(read_stream(url, task["id"], timeout=10))
        )
        reader.start()
        time.sleep(0.2)
        interrupted = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        reader.join(5)
        assert time.monotonic() - interrupted < 2.0
        assert child.returncode == 0, err
        assert out.strip() == b"returned"
        assert opened and not reader.is_alive()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
