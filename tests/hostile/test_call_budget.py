"""``request_timeout`` bounds a whole call, its retries included (not (max_retries + 1) × request_timeout)."""

from __future__ import annotations

import socket
import time

import pytest

import inferencesh
from inferencesh import inference

from .rawserver import Request, hold, serving

pytestmark = pytest.mark.timeout(60)


def test_a_server_that_accepts_and_never_answers_costs_one_request_timeout() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        hold(conn, limit=20.0)  # reads nothing more, answers nothing

    with serving(handler) as server:
        client = inference(api_key="test", base_url=server.url, request_timeout=1.0, backoff_initial=0.01)
        began = time.monotonic()
        with pytest.raises(inferencesh.ConnectionLost):
            client.run({"app": "a/b", "input": {}}, wait=False)
        took = time.monotonic() - began
        attempts = len(server.requests)
    assert took < 3.0  # with 6 attempts of 1 s each it took 6 s
    assert attempts >= 1
