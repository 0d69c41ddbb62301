"""Helpers shared by every test folder."""

from __future__ import annotations

import time
from typing import Any, Callable

from inferencesh import Client, inference


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` every ``interval`` seconds until it is truthy (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def quick_client(base_url: str, api_key: str, **settings: Any) -> Client:
    """A client tuned for a fast local server: idle reads time out after 2 × 0.5 s, reconnects in 20–200 ms.

    Further keyword arguments are ``Settings`` fields (``stream_format``, ``dialect``, ...).
    """
    tuned: dict[str, Any] = {"heartbeat_interval": 0.5, "backoff_initial": 0.02, "backoff_max": 0.2, **settings}
    return inference(api_key=api_key, base_url=base_url, **tuned)
