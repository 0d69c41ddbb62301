"""The official JavaScript SDK in a real Chromium: the example page (examples/browser/sdk/, served by the Flask
example) with ``proxyUrl`` at the relay, ``LocalServer(dialect="hosted")`` behind it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page

from inferencesh.relay import Relay, RelayServer
from inferencesh.server import LocalServer
from tests.helpers import wait_until
from tests.relay.test_examples import load

from .conftest import SECRET, screenshot, texts, wait_done

pytestmark = pytest.mark.browser
STATUS_NAMES = ["unknown", "received", "queued", "dispatched", "preparing", "serving", "setting_up", "running"]
STATUS_NAMES += ["cancelling", "uploading", "completed", "failed", "cancelled", "rejected"]


@pytest.fixture(scope="module")
def hosted() -> Iterator[LocalServer]:
    """flux-schnell in about a second, the hosted dialect; it needs the key only the relay has."""
    with LocalServer(api_key=SECRET, speed=4, heartbeat=0.5, dialect="hosted") as running:
        yield running


@pytest.fixture()
def site_url(hosted: LocalServer) -> Iterator[tuple[str, Relay]]:
    pytest.importorskip("flask", reason="the web extra: pip install -e '.[web]'")
    relay = Relay(api_key=SECRET, base_url=hosted.url, heartbeat_interval=0.5)
    with RelayServer(load("flask_app").create_app(relay), threads=16) as server:
        yield server.url + "/sdk/", relay
    relay.close()


@pytest.fixture()
def tab(browser: Browser) -> Iterator[tuple[Page, list[dict[str, Any]]]]:
    """A fresh page and the responses it got (url, status, headers)."""
    context = browser.new_context(viewport={"width": 900, "height": 1100})
    opened = context.new_page()
    seen: list[dict[str, Any]] = []
    opened.on("response", lambda r: seen.append({"url": r.url, "status": r.status, "headers": r.headers}))
    yield opened, seen
    context.close()


def upstream_task(server: LocalServer, task_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {SECRET}", "X-API-Version": "2"}
    answer = requests.get(f"{server.url}/tasks/{task_id}", headers=headers, timeout=10)
    answer.raise_for_status()
    task: dict[str, Any] = answer.json()
    return task


def test_run_shows_every_status_the_logs_and_the_image(
    hosted: LocalServer, site_url: tuple[str, Relay], tab: tuple[Page, list[dict[str, Any]]]
) -> None:
    url, relay = site_url
    page, seen = tab
    page.goto(url)
    page.click("#run")
    wait_done(page)
    screenshot(page, "sdk-page-completed")
    task_id = page.inner_text("#task-id").strip()
    task = upstream_task(hosted, task_id)
    assert page.inner_text("#status") == "completed" == STATUS_NAMES[task["status"]]
    shown = texts(page, "#statuses li")
    history = [STATUS_NAMES[event["status"]] for event in task["events"]]
    # The run's answer says received; the stream then starts wherever the task is and skips nothing.
    assert shown[0] == "received" and shown[1:] == history[history.index(shown[1]) :], (shown, history)
    assert "running" in shown and shown[-1] == "completed"
    lines = [" ".join(line.split()) for record in task["logs"] for line in record["content"].splitlines()]
    assert [" ".join(line.split()) for line in texts(page, "#logs li")] == lines and lines  # innerText collapses spaces
    assert page.get_attribute("#output", "src") == task["output"]["image"]
    assert page.eval_on_selector("#output", "img => img.complete && img.naturalWidth > 0")
    assert page.inner_text("#error") == ""
    proxied = [r for r in seen if "/api/inference/proxy" in r["url"]]
    assert proxied and all(r["status"] == 200 for r in proxied)
    assert any("__inf_target=" in r["url"] for r in proxied)  # the task stream
    assert SECRET not in page.content() + repr(seen)
    assert SECRET not in page.evaluate("document.cookie + JSON.stringify(localStorage)")
    assert wait_until(lambda: relay.open_forwards == 0, timeout=2.0)


def test_cancel_stops_a_long_task_on_the_server(
    hosted: LocalServer, site_url: tuple[str, Relay], tab: tuple[Page, list[dict[str, Any]]]
) -> None:
    url, relay = site_url
    page, _ = tab
    page.goto(url)
    page.fill("#app", "infsh/sleep")
    page.fill("#extra", '{"seconds": 600}')
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent === 'running'", timeout=15_000)
    task_id = page.inner_text("#task-id").strip()
    assert upstream_task(hosted, task_id)["status"] == 7
    page.click("#cancel")
    wait_done(page)
    screenshot(page, "sdk-page-cancelled")
    assert page.inner_text("#status") == "cancelled"
    assert texts(page, "#statuses li")[-2:] == ["cancelling", "cancelled"]
    assert upstream_task(hosted, task_id)["status"] == 12  # cancelled on the server
    assert page.inner_text("#error") == ""
    assert page.is_enabled("#run") and not page.is_enabled("#cancel")
    assert wait_until(lambda: relay.open_forwards == 0, timeout=2.0)
