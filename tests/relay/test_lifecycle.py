"""A browser that goes away takes its upstream stream with it, within a second."""

from __future__ import annotations

import io
import threading
import time
from typing import Any, Callable

from inferencesh import Client
from inferencesh.relay import make_relay
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import Served, make_client
from .helpers import flux, post_json, stream


def relay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("inferencesh-relay-tsk_")]


def test_a_browser_leaving_a_silent_stream_closes_the_upstream_within_a_second(
    quiet_upstream: LocalServer, serve: Callable[..., Served]
) -> None:
    """The upstream sends nothing for 10 s and the relay writes nothing (15 s heartbeat): only
    waitress' disconnect hook can tell the relay that the browser has gone."""
    with make_client(quiet_upstream) as quiet:
        served = serve(quiet)
        task_id = post_json(served.base + "/proxy", {"app": "infsh/sleep", "input": {"seconds": 60}}).json()["data"][
            "id"
        ]
        reader = stream(served.base, task_id)
        assert wait_until(lambda: any(b.data["status"] == "running" for b in reader.events))
        assert wait_until(lambda: quiet_upstream.open_streams == 1)
        connections = quiet_upstream.open_connections
        time.sleep(0.3)  # well into the quiet part
        left = time.monotonic()
        reader.close()
        assert wait_until(lambda: quiet_upstream.open_streams == 0, timeout=1.0)
        took = time.monotonic() - left
        assert took < 1.0
        assert wait_until(lambda: served.relay.open_streams == 0, timeout=1.0)
        assert wait_until(lambda: quiet_upstream.open_connections <= connections - 1, timeout=1.0)
        assert wait_until(lambda: not relay_threads(), timeout=1.0)
        quiet.tasks.cancel(task_id)


def test_a_browser_leaving_a_busy_stream_closes_the_upstream(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    task_id = post_json(served.base + "/proxy", {"app": "infsh/sleep", "input": {"seconds": 600}}).json()["data"]["id"]
    reader = stream(served.base, task_id)
    assert wait_until(lambda: len(reader.events) >= 3)
    reader.close()
    assert wait_until(lambda: upstream.open_streams == 0, timeout=1.0)
    assert wait_until(lambda: served.relay.open_streams == 0, timeout=1.0)
    client.tasks.cancel(task_id)


def test_many_browsers_coming_and_going_leak_nothing(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    task_id = post_json(served.base + "/proxy", {"app": "infsh/sleep", "input": {"seconds": 600}}).json()["data"]["id"]
    readers = [stream(served.base, task_id) for _ in range(10)]
    assert wait_until(lambda: upstream.open_streams == 10)
    for reader in readers:
        reader.close()
    assert wait_until(lambda: upstream.open_streams == 0, timeout=1.0)
    assert wait_until(lambda: served.relay.open_streams == 0, timeout=1.0)
    assert wait_until(lambda: not relay_threads(), timeout=1.0)
    client.tasks.cancel(task_id)


def test_the_server_calling_close_on_the_iterable_closes_the_upstream(
    quiet_upstream: LocalServer,
) -> None:
    """What any WSGI server does when a write fails (PEP 3333): call ``close()``. No waitress hook here."""
    with make_client(quiet_upstream) as quiet:
        relay = make_relay(quiet)
        task_id = quiet.run({"app": "infsh/sleep", "input": {"seconds": 60}}, wait=False).id
        started: list[Any] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/stream",
            "QUERY_STRING": f"taskId={task_id}",
            "wsgi.input": io.BytesIO(b""),
        }
        body = relay(environ, lambda status, headers, exc_info=None: started.append(status))  # type: ignore[arg-type]
        assert started == ["200 OK"]
        chunks = iter(body)
        assert next(chunks).startswith(b"retry:")
        assert next(chunks).startswith(b"id: 1\n")
        assert wait_until(lambda: quiet_upstream.open_streams == 1)
        closed = time.monotonic()
        body.close()  # type: ignore[attr-defined]
        assert wait_until(lambda: quiet_upstream.open_streams == 0, timeout=1.0)
        assert time.monotonic() - closed < 1.0
        assert relay.open_streams == 0
        assert list(chunks) == []
        quiet.tasks.cancel(task_id)


def test_a_stream_without_the_browser_reading_it_to_the_end_still_finishes(
    client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    task_id = post_json(served.base + "/proxy", flux()).json()["data"]["id"]
    reader = stream(served.base, task_id).wait()
    assert reader.events[-1].data["status"] == "completed"
    assert wait_until(lambda: served.relay.open_streams == 0, timeout=1.0)
    assert wait_until(lambda: not relay_threads(), timeout=1.0)
