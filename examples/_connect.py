"""Shared by the examples: a client for INFERENCE_BASE_URL, or for an embedded local server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from inferencesh import Client, inference


@contextlib.contextmanager
def connect() -> Iterator[Client]:
    """Yield a client: the configured server when ``INFERENCE_BASE_URL`` is set, else a local one."""
    if os.environ.get("INFERENCE_BASE_URL"):
        with inference() as client:
            yield client
        return
    from inferencesh.server import LocalServer

    with LocalServer(speed=20) as server, inference(api_key="local", base_url=server.url) as client:
        yield client
