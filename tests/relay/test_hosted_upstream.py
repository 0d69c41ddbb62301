"""The relay in front of an upstream that speaks the hosted dialect: runs, streams and cancels as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import pytest

from inferencesh.server import LocalServer
from tests.helpers import quick_client, wait_until

from .conftest import Served
from .helpers import SECRET, flux, post_json, request, stream


@pytest.fixture(scope="module")
def hosted() -> Iterator[LocalServer]:
    with LocalServer(api_key=SECRET, speed=10, heartbeat=0.5, dialect="hosted") as running:
        yield running


def test_run_stream_and_cancel_through_a_hosted_upstream(hosted: LocalServer, serve: Callable[..., Served]) -> None:
    with quick_client(hosted.url, SECRET) as client:
        served = serve(client)
        answer = post_json(served.base + "/proxy", flux())
        assert answer.status == 200, answer.body
        task = answer.json()["data"]
        assert task["status"] == "received"  # the hosted code 1, given as its name
        reader = stream(served.base, task["id"]).wait()
        statuses = [block.data["status"] for block in reader.events]
        assert statuses[0] == "received" and statuses[-1] == "completed"
        assert "scheduled" in statuses and "uploading" in statuses  # hosted codes 3 and 9, read with its table
        assert [block.id for block in reader.events] == list(range(1, len(statuses) + 1))

        sleeper = post_json(served.base + "/proxy", {"app": "infsh/sleep", "input": {"seconds": 600}}).json()["data"]
        cancelled = request("POST", f"{served.base}/cancel?taskId={sleeper['id']}")
        assert cancelled.status == 200, cancelled.body
        assert cancelled.json()["data"]["status"] in ("cancelling", "cancelled")  # hosted: 8, then 12
        assert wait_until(lambda: client.tasks.get(sleeper["id"]).status == "cancelled")
