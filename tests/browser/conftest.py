"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, the example page
served with the relay in front of a LocalServer.

Playwright cannot download browsers here, so it launches ``/usr/bin/chromium`` (``.ci/run``
installs it with apt). Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

pytest.importorskip("playwright", reason="the browser extra: pip install -e '.[browser]'")
pytest.importorskip("waitress", reason="the relay extra: pip install -e '.[relay]'")

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from inferencesh import Client
from inferencesh.relay import Relay, RelayServer, make_relay, site
from inferencesh.server import LocalServer
from tests.helpers import quick_client

CHROMIUM = os.environ.get("INFERENCESH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "inf_browser_s3cr3t_must_not_reach_the_page_5d1e"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does this)")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalServer]:
    """flux-schnell in about a second; it needs the key, which only the relay has."""
    with LocalServer(api_key=SECRET, speed=4, heartbeat=0.5, retry_ms=20) as running:
        yield running


def make_client(server: LocalServer) -> Client:
    return quick_client(server.url, SECRET)


@pytest.fixture()
def client(upstream: LocalServer) -> Iterator[Client]:
    with make_client(upstream) as made:
        yield made


@dataclass
class Site:
    """The page at ``url`` with the relay at ``/api/inference``."""

    relay: Relay
    server: RelayServer

    @property
    def url(self) -> str:
        return self.server.url + "/"


@pytest.fixture()
def serve_site() -> Iterator[Callable[..., Site]]:
    """``serve_site(client, **relay_options)``: the page and relay under waitress; the browser retries after 100 ms."""
    started: list[Site] = []

    def start(client: Client, **options: Any) -> Site:
        relay = make_relay(client, **{"retry_ms": 100, **options})
        served = Site(relay, RelayServer(site(relay), threads=16).start())
        started.append(served)
        return served

    yield start
    for served in started:
        served.server.stop()


@dataclass
class Traffic:
    """What the page received: every response (headers, body when readable) and every SSE message."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    stream_requests: list[dict[str, str]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def blob(self) -> str:
        return json.dumps([self.responses, self.messages], default=str)

    @property
    def event_ids(self) -> list[int]:
        return [int(m["eventId"]) for m in self.messages if m.get("eventId")]


@pytest.fixture()
def page(browser: Browser) -> Iterator[tuple[Page, Traffic]]:
    """A fresh page, recording its network traffic (bodies, and SSE messages through the DevTools protocol)."""
    context = browser.new_context(viewport={"width": 900, "height": 1100})
    opened = context.new_page()
    traffic = Traffic()
    cdp = context.new_cdp_session(opened)
    cdp.send("Network.enable")

    def on_message(message: dict[str, Any]) -> None:
        traffic.messages.append(message)

    cdp.on("Network.eventSourceMessageReceived", on_message)

    def on_response(response: Any) -> None:
        entry: dict[str, Any] = {"url": response.url, "status": response.status, "headers": response.headers}
        try:
            entry["body"] = response.body().decode("utf-8", "replace")
        except Exception as exc:  # an event stream's body is read through the SSE messages instead
            entry["body_error"] = str(exc)
        traffic.responses.append(entry)

    def on_request(request: Any) -> None:
        if "/api/inference/stream" in request.url:
            traffic.stream_requests.append(request.all_headers())

    opened.on("response", on_response)
    opened.on("request", on_request)
    yield opened, traffic
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``test-artifacts/<name>.png``; returns the path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def texts(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def wait_done(page: Page, timeout_ms: float = 20_000) -> None:
    page.wait_for_selector("body[data-done='true']", state="attached", timeout=timeout_ms)


def start(page: Page, url: str, app: Optional[str] = None, extra: Optional[dict[str, Any]] = None) -> None:
    page.goto(url)
    if app is not None:
        page.fill("#app", app)
    if extra is not None:
        page.fill("#extra", json.dumps(extra))
    page.click("#run")
