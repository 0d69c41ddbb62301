"""Fixtures for the official JavaScript SDK tests: Node, the SDK from npm (cached), our relay in front
of ``LocalServer(dialect="hosted")``, and ``run_sdk(scenario)`` that runs ``sdk_node.mjs`` against them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

pytest.importorskip("waitress", reason="the relay extra: pip install -e '.[relay]'")

from inferencesh.relay import Relay, RelayServer, site
from inferencesh.server import LocalServer

from . import npm

SECRET = "inf_jssdk_s3cr3t_stays_in_the_relay_91c2"
MOUNT = "/api/inference"


@pytest.fixture(scope="session")
def node_cache() -> Path:
    """``.node-cache`` with the pinned SDK and esbuild; skips without Node unless INFERENCESH_REQUIRE_NODE=1."""
    try:
        return npm.ensure()
    except npm.NodeMissing as exc:
        if os.environ.get("INFERENCESH_REQUIRE_NODE") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def sdk_script(node_cache: Path) -> Path:
    """``sdk_node.mjs`` bundled with the SDK for Node (rebuilt each session, a fraction of a second)."""
    build = node_cache / "build"
    build.mkdir(exist_ok=True)
    return npm.bundle(Path(__file__).with_name("sdk_node.mjs"), build / "sdk_node.mjs")


@pytest.fixture(scope="module")
def hosted() -> Iterator[LocalServer]:
    """The hosted dialect, fast: flux-schnell in ~0.4 s; it requires the key only the relay has."""
    with LocalServer(api_key=SECRET, speed=10, heartbeat=0.5, dialect="hosted") as running:
        yield running


@dataclass
class Proxied:
    """The relay (``/api/inference``) under waitress in front of ``upstream``."""

    relay: Relay
    server: RelayServer
    upstream: LocalServer

    @property
    def proxy_url(self) -> str:
        return self.server.url + MOUNT + "/proxy"


@pytest.fixture()
def proxied(hosted: LocalServer) -> Iterator[Proxied]:
    relay = Relay(api_key=SECRET, base_url=hosted.url, heartbeat_interval=0.5)
    with RelayServer(site(relay), threads=16) as server:
        yield Proxied(relay, server, hosted)
    relay.close()


def run_node(script: Path, proxy_url: str, base_url: str, scenario: str) -> dict[str, dict[str, Any]]:
    """Run ``script`` for ``scenario`` (comma-separated); its JSON reports by scenario. Fails on a non-zero exit."""
    env = {**os.environ, "PROXY_URL": proxy_url, "BASE_URL": base_url, "SCENARIO": scenario}
    env.pop("INFERENCE_API_KEY", None)  # the SDK must have no key of its own
    done = subprocess.run(
        [npm.node(), str(script)], env=env, capture_output=True, text=True, timeout=90, cwd=script.parent
    )
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert SECRET not in done.stdout + done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {report.pop("scenario"): report for report in reports}


@pytest.fixture()
def run_sdk(sdk_script: Path, proxied: Proxied) -> Callable[[str], dict[str, dict[str, Any]]]:
    """``run_sdk("run,cancel")``: the official SDK in Node, ``proxyUrl`` at the relay; its reports."""

    def run(scenario: str) -> dict[str, dict[str, Any]]:
        return run_node(sdk_script, proxied.proxy_url, proxied.upstream.url, scenario)

    return run
