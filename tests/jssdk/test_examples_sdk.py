"""The official SDK in Node through the Flask and Django examples (waitress), which also serve the SDK page."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferencesh.relay import Relay, RelayServer
from inferencesh.server import LocalServer
from tests.relay.helpers import request
from tests.relay.test_examples import EXAMPLES, load

from .conftest import MOUNT, SECRET, run_node


@pytest.mark.parametrize("name", ["flask_app", "django_app"])
def test_the_official_sdk_runs_and_cancels_through_the_example(
    sdk_script: Path, hosted: LocalServer, name: str
) -> None:
    pytest.importorskip(name.split("_")[0], reason="the web extra: pip install -e '.[web]'")
    relay = Relay(api_key=SECRET, base_url=hosted.url, heartbeat_interval=0.5)
    with RelayServer(load(name).create_app(relay), threads=8) as server:
        page = request("GET", server.url + "/sdk/")
        assert page.status == 200 and f'<meta name="inference-api" content="{hosted.url}">'.encode() in page.body
        bundle = request("GET", server.url + "/sdk/page.bundle.js")
        assert bundle.status == 200 and bundle.body == (EXAMPLES / "browser" / "sdk" / "page.bundle.js").read_bytes()
        reports = run_node(sdk_script, server.url + MOUNT + "/proxy", hosted.url, "run,cancel")
        assert reports["run"]["status"] == 10 and reports["cancel"]["status"] == 12
        assert request("GET", server.url + "/api/inference/stream?taskId=../x").status == 400  # today's routes too
    relay.close()
    assert relay.open_forwards == 0


def test_the_checked_in_bundle_is_built_from_page_js(node_cache: Path, tmp_path: Path) -> None:
    """``page.bundle.js`` is what ``python -m tests.jssdk.npm page`` makes of ``page.js`` with the pinned SDK."""
    from . import npm

    fresh = npm.build_page(tmp_path / "page.bundle.js")
    assert fresh.read_bytes() == npm.PAGE_BUNDLE.read_bytes(), "rebuild it: python -m tests.jssdk.npm page"
