"""The example page in a real Chromium, through the relay, in front of a LocalServer."""

from __future__ import annotations

from typing import Callable

import pytest
from playwright.sync_api import Page

from inferencesh import Client, TaskStatus
from inferencesh.server import LocalServer

from .conftest import SECRET, Site, Traffic, make_client, screenshot, start, texts, wait_done

pytestmark = pytest.mark.browser


def statuses_in_order(client: Client, task_id: str) -> list[str]:
    """The task's statuses as the SDK streams them, each change once."""
    seen: list[str] = []
    for update in client.tasks.stream(task_id):
        if not seen or seen[-1] != update.status.value:
            seen.append(update.status.value)
    return seen


def shown_task_id(page: Page) -> str:
    return page.inner_text("#task-id").strip()


def assert_nothing_secret(page: Page, traffic: Traffic) -> None:
    assert SECRET not in page.content()
    assert SECRET not in page.evaluate(
        "document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"
    )
    assert SECRET not in traffic.blob()


def test_the_page_shows_every_status_the_logs_and_the_image(
    client: Client, serve_site: Callable[..., Site], page: tuple[Page, Traffic]
) -> None:
    tab, traffic = page
    served = serve_site(client)
    start(tab, served.url)
    wait_done(tab)
    task_id = shown_task_id(tab)
    task = client.tasks.get(task_id)
    assert task.status is TaskStatus.COMPLETED
    assert texts(tab, "#statuses li") == statuses_in_order(client, task_id)
    assert texts(tab, "#statuses li")[0] == "received" and tab.inner_text("#status") == "completed"
    assert "running" in texts(tab, "#statuses li")
    assert texts(tab, "#logs li") == list(task.logs)
    assert tab.get_attribute("#output", "src") == task.raw_output["image"]
    assert tab.get_attribute("#output", "data-final") == "true"
    assert tab.eval_on_selector("#output", "img => img.complete && img.naturalWidth > 0")
    assert tab.eval_on_selector("#progress", "bar => bar.value") == 1
    assert tab.inner_text("#error") == ""
    assert traffic.event_ids == list(range(1, len(traffic.event_ids) + 1))
    assert all(m["eventName"] == "message" for m in traffic.messages)  # unnamed: onmessage got them
    assert_nothing_secret(tab, traffic)
    screenshot(tab, "relay-page-completed")


def test_cancel_ends_the_task_as_cancelled(
    client: Client, serve_site: Callable[..., Site], page: tuple[Page, Traffic]
) -> None:
    tab, traffic = page
    served = serve_site(client)
    start(tab, served.url, app="infsh/sleep", extra={"seconds": 120})
    tab.wait_for_function("document.getElementById('status').textContent === 'running'", timeout=10_000)
    task_id = shown_task_id(tab)
    tab.click("#cancel")
    wait_done(tab)
    assert tab.inner_text("#status") == "cancelled"
    assert texts(tab, "#statuses li")[-2:] == ["running", "cancelled"]
    assert client.tasks.get(task_id).status is TaskStatus.CANCELLED
    assert tab.is_disabled("#cancel") and tab.is_enabled("#run")
    assert any("/api/inference/cancel" in r["url"] and r["status"] == 200 for r in traffic.responses)
    assert_nothing_secret(tab, traffic)
    screenshot(tab, "relay-page-cancelled")


def test_a_relay_side_drop_is_resumed_by_the_browser_with_no_log_line_lost_or_repeated(
    client: Client, serve_site: Callable[..., Site], page: tuple[Page, Traffic]
) -> None:
    tab, traffic = page
    served = serve_site(client, drop_after=3)  # the relay ends every stream response after 3 events
    start(tab, served.url)
    wait_done(tab)
    task = client.tasks.get(shown_task_id(tab))
    assert task.status is TaskStatus.COMPLETED
    assert texts(tab, "#logs li") == list(task.logs)
    assert texts(tab, "#statuses li") == statuses_in_order(client, task.id)
    total = len(list(client.tasks.stream(task.id)))
    assert traffic.event_ids == list(range(1, total + 1))
    # the browser reconnected on its own, each time from the last event it had
    assert len(traffic.stream_requests) >= total // 3
    assert "last-event-id" not in traffic.stream_requests[0]
    resumed = [int(headers["last-event-id"]) for headers in traffic.stream_requests[1:]]
    assert resumed == [3 * n for n in range(1, len(resumed) + 1)]
    assert tab.get_attribute("#output", "src") == task.raw_output["image"]
    assert_nothing_secret(tab, traffic)
    screenshot(tab, "relay-page-resumed")


def test_upstream_drops_are_invisible_to_the_page(serve_site: Callable[..., Site], page: tuple[Page, Traffic]) -> None:
    tab, traffic = page
    faults = [{"kind": "reset", "after": 4}, {"kind": "torn", "after": 5}, {"kind": "stall", "after": 2, "seconds": 2}]
    with LocalServer(api_key=SECRET, speed=4, heartbeat=0.5, retry_ms=20, faults=faults) as flaky:
        with make_client(flaky) as client:
            served = serve_site(client)
            start(tab, served.url)
            wait_done(tab)
            task = client.tasks.get(shown_task_id(tab))
            assert task.status is TaskStatus.COMPLETED
            assert texts(tab, "#logs li") == list(task.logs)
            assert len(traffic.stream_requests) == 1  # the relay resumed upstream; the browser saw nothing
            assert traffic.event_ids == list(range(1, len(traffic.event_ids) + 1))
            assert len([r for r in flaky.requests if r.path.endswith("/stream")]) >= 3
            assert_nothing_secret(tab, traffic)

