"""The Flask and Django examples mount the relay and relay a whole run; ``serve_relay`` serves it."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from inferencesh import Client
from inferencesh.relay import RelayServer, make_relay, page_html
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .helpers import SECRET, flux, post_json, request, stream

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"relay_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Django imports its ROOT_URLCONF by this name
    spec.loader.exec_module(module)
    return module


def check_site(url: str, client: Client) -> None:
    page = request("GET", url + "/")
    assert page.status == 200 and page.body == (EXAMPLES / "browser" / "index.html").read_bytes()
    answer = post_json(url + "/api/inference/proxy", flux())
    assert answer.status == 200, answer.body
    task_id = answer.json()["data"]["id"]
    reader = stream(url + "/api/inference", task_id).wait()
    assert reader.status == 200
    assert [b.id for b in reader.events] == [u.event_id for u in client.tasks.stream(task_id)]
    assert reader.events[-1].data["status"] == "completed"
    assert request("POST", f"{url}/api/inference/cancel?taskId={task_id}").status == 409
    assert SECRET.encode() not in reader.raw + page.body + answer.body


@pytest.mark.parametrize("name", ["flask_app", "django_app"])
def test_the_example_mounts_the_relay_and_relays_a_run(client: Client, name: str) -> None:
    pytest.importorskip(name.split("_")[0], reason="the web extra: pip install -e '.[web]'")
    module = load(name)
    relay = make_relay(client)
    with RelayServer(module.create_app(relay), threads=8) as server:
        check_site(server.url, client)
        missing = request("GET", server.url + "/api/inference/stream?taskId=../x")
        assert missing.status == 400  # the relay answered, not the framework
        assert missing.headers["content-type"] == "application/problem+json"
    assert relay.open_streams == 0


def test_the_shipped_page_is_the_example_page() -> None:
    assert page_html() == (EXAMPLES / "browser" / "index.html").read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_relay_serves_the_page_and_the_relay(upstream: LocalServer, client: Client) -> None:
    """What ``infsh relay`` runs: the key from INFERENCE_API_KEY, the upstream from --upstream."""
    port = free_port()
    env: dict[str, Any] = {**os.environ, "INFERENCE_API_KEY": SECRET, "INFERENCE_BASE_URL": "http://127.0.0.1:9"}
    code = f"from inferencesh.relay import serve_relay; serve_relay(port={port}, upstream={upstream.url!r})"
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return request("GET", url + "/").status == 200
            except OSError:
                return False

        assert wait_until(up, timeout=15.0)
        check_site(url, client)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in err and upstream.url in err
    assert SECRET not in out + err
