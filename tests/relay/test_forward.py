"""``/proxy`` with a target relays answers as they arrive: NDJSON and SSE task streams of a hosted upstream,
unbuffered, without ``content-length``/``content-encoding``, and a browser leaving closes the upstream."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from inferencesh.relay import Relay, RelayServer, site
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .helpers import MOUNT, SECRET, SSEReader, request
from .recorder import Recorder


@pytest.fixture(scope="module")
def hosted() -> Iterator[LocalServer]:
    with LocalServer(api_key=SECRET, speed=10, heartbeat=0.5, dialect="hosted") as running:
        yield running


@pytest.fixture(scope="module")
def quiet_hosted() -> Iterator[LocalServer]:
    """A hosted upstream whose sleep task is silent: 10 s between ticks, 30 s between heartbeats."""
    with LocalServer(api_key=SECRET, speed=0.1, heartbeat=30, dialect="hosted") as running:
        yield running


def start(server: LocalServer, app: str, task_input: dict[str, Any]) -> str:
    answer = requests.post(
        server.url + "/apps/run",
        json={"app": app, "input": task_input},
        headers={"Authorization": f"Bearer {SECRET}", "X-API-Version": "2"},
        timeout=10,
    )
    answer.raise_for_status()
    task_id: str = answer.json()["id"]
    return task_id


def open_stream(proxy: str, target: str, accept: str) -> SSEReader:
    """GET the proxy the way the SDK's streams do: the target in the query and the header."""
    url = f"{proxy}?__inf_target={quote(target, safe='')}"
    return SSEReader(url, headers={"Accept": accept, "x-inf-target-url": target}).start()


def forward_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "inferencesh-relay-forward"]


@pytest.fixture()
def relay_for(request: pytest.FixtureRequest) -> Iterator[Any]:
    started: list[tuple[Relay, RelayServer]] = []

    def make(base_url: str, **options: Any) -> tuple[Relay, str]:
        relay = Relay(api_key=SECRET, base_url=base_url, heartbeat_interval=0.5, **options)
        server = RelayServer(site(relay), threads=8).start()
        started.append((relay, server))
        return relay, server.url + MOUNT + "/proxy"

    yield make
    for relay, server in started:
        server.stop()
        relay.close()


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/event-stream"])
def test_a_hosted_task_stream_is_relayed_whole(hosted: LocalServer, relay_for: Any, accept: str) -> None:
    relay, proxy = relay_for(hosted.url)
    task_id = start(hosted, "infsh/flux-schnell", {"prompt": "a fox"})
    reader = open_stream(proxy, f"{hosted.url}/tasks/{task_id}/stream", accept).wait()
    assert reader.status == 200 and reader.error is None
    assert reader.response_headers["content-type"].startswith(accept)
    assert "content-length" not in reader.response_headers
    text = reader.raw.decode()
    if accept == "application/x-ndjson":
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        lines = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    last = [line.get("data", line) for line in lines if "status" in line.get("data", line)][-1]
    assert last["status"] == 10 and last["output"]["image"].endswith(".png")
    assert wait_until(lambda: relay.open_forwards == 0, timeout=2.0)
    assert SECRET not in text


def test_pieces_arrive_unbuffered(relay_for: Any) -> None:
    with Recorder.serve() as upstream:
        _, proxy = relay_for(upstream.url)
        reader = open_stream(proxy, upstream.url + "/lines", "application/x-ndjson")
        for number in (1, 2, 3):
            upstream.release(number)
            # each line reaches the browser while the upstream still holds back the next one
            assert wait_until(lambda n=number: reader.raw.count(b"\n") == n, timeout=5.0), reader.raw
        reader.wait()
        assert reader.raw == b'{"line": 1}\n{"line": 2}\n{"line": 3}\n'


def test_content_length_and_content_encoding_are_dropped(relay_for: Any) -> None:
    with Recorder.serve() as upstream:
        _, proxy = relay_for(upstream.url)
        zipped = request("GET", proxy, None, {"x-inf-target-url": upstream.url + "/gzip"})
        assert zipped.status == 200 and json.loads(zipped.body) == {"zipped": True}  # decoded by the relay
        assert "content-encoding" not in zipped.headers
        assert upstream.seen[-1].headers["accept-encoding"] == "identity"
        plain = request("GET", proxy, None, {"x-inf-target-url": upstream.url + "/tasks/x"})
        assert plain.status == 200 and plain.json()["path"] == "/tasks/x"
        assert plain.headers.get("transfer-encoding") == "chunked" and "content-length" not in plain.headers
        assert plain.headers["cache-control"] == "no-store"


def test_upstream_errors_pass_through_with_their_status(hosted: LocalServer, relay_for: Any) -> None:
    _, proxy = relay_for(hosted.url)
    missing = request("GET", proxy, None, {"x-inf-target-url": f"{hosted.url}/tasks/tsk_nope"})
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_a_browser_leaving_a_quiet_stream_closes_the_upstream(quiet_hosted: LocalServer, relay_for: Any) -> None:
    relay, proxy = relay_for(quiet_hosted.url)
    task_id = start(quiet_hosted, "infsh/sleep", {"seconds": 60})
    reader = open_stream(proxy, f"{quiet_hosted.url}/tasks/{task_id}/stream", "application/x-ndjson")
    assert wait_until(lambda: b'"status":7' in reader.raw.replace(b" ", b""), timeout=10.0), reader.raw
    assert wait_until(lambda: quiet_hosted.open_streams == 1)
    assert relay.open_forwards == 1
    left = time.monotonic()
    reader.close()  # only waitress' disconnect hook can tell: nothing is being written
    assert wait_until(lambda: quiet_hosted.open_streams == 0, timeout=1.0)
    assert time.monotonic() - left < 1.0
    assert wait_until(lambda: relay.open_forwards == 0, timeout=1.0)
    assert wait_until(lambda: not forward_threads(), timeout=1.0)
    requests.post(f"{quiet_hosted.url}/tasks/{task_id}/cancel", headers={"Authorization": f"Bearer {SECRET}"})


def test_the_server_calling_close_closes_the_upstream(quiet_hosted: LocalServer) -> None:
    """Any WSGI server calls ``close()`` when a write fails (PEP 3333); no waitress hook here."""
    relay = Relay(api_key=SECRET, base_url=quiet_hosted.url)
    task_id = start(quiet_hosted, "infsh/sleep", {"seconds": 60})
    target = f"{quiet_hosted.url}/tasks/{task_id}/stream"
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/proxy",
        "QUERY_STRING": "__inf_target=" + quote(target, safe=""),
        "HTTP_ACCEPT": "application/x-ndjson",
        "wsgi.input": io.BytesIO(b""),
    }
    started: list[str] = []
    body = relay(environ, lambda status, headers, exc_info=None: started.append(status))  # type: ignore[arg-type]
    assert started == ["200 OK"]
    assert next(iter(body)).startswith(b"{")  # the whole task comes first
    assert wait_until(lambda: quiet_hosted.open_streams == 1)
    body.close()  # type: ignore[attr-defined]
    assert wait_until(lambda: quiet_hosted.open_streams == 0, timeout=1.0)
    assert relay.open_forwards == 0
    relay.close()
    requests.post(f"{quiet_hosted.url}/tasks/{task_id}/cancel", headers={"Authorization": f"Bearer {SECRET}"})
