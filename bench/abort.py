"""Deadline overshoot and cancel latency on a stalled stream (issue C), ``trials`` of each.

The server (``_recorded.py stall``, a child process) answers the stream with
headers, ``retry:`` and one update, then sends nothing at all and keeps the
connection open: the SDK's read is blocked in ``recv`` when the abort comes.

* deadline overshoot: ``client.tasks.stream(id, timeout=D)`` is iterated;
  overshoot = (when ``StreamTimeout`` reaches the loop) − (call time + D);
* cancel latency: after the first update, another thread waits
  ``cancel_delay`` and calls ``token.cancel()``; latency = (when ``Cancelled``
  reaches the loop) − (the moment just before ``cancel()``).

The idle read timeout (2 × heartbeat) is far longer than either, so only
the watchdog can end these reads.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench._recorded import TASK_ID, RawServer
from bench.latency import summary_ms


def _deadline_overshoot(client: Any, deadline: float) -> float:
    from inferencesh import StreamTimeout

    start = time.monotonic()
    try:
        for _ in client.tasks.stream(TASK_ID, timeout=deadline):
            pass
    except StreamTimeout:
        return time.monotonic() - (start + deadline)
    raise AssertionError("the stalled stream ended without StreamTimeout")


def _cancel_latency(client: Any, delay: float) -> float:
    from inferencesh import Cancelled, CancelToken

    token = CancelToken()
    cancelled_at: list[float] = []

    def cancel_later() -> None:
        time.sleep(delay)
        cancelled_at.append(time.monotonic())
        token.cancel()

    canceller = threading.Thread(target=cancel_later, name="bench-canceller")
    try:
        for _ in client.tasks.stream(TASK_ID, cancel=token):
            if not canceller.is_alive() and not cancelled_at:
                canceller.start()
    except Cancelled:
        raised = time.monotonic()
        canceller.join()
        return raised - cancelled_at[0]
    raise AssertionError("the stalled stream ended without Cancelled")


def run(trials: int = 50, deadline: float = 0.2, cancel_delay: float = 0.05) -> dict[str, Any]:
    """p50/p99 (ms) of deadline overshoot and cancel latency over ``trials`` each."""
    from inferencesh import inference

    overshoots: list[float] = []
    latencies: list[float] = []
    with RawServer("stall") as server, inference(api_key="bench", base_url=server.url) as client:
        for _ in range(trials):
            overshoots.append(_deadline_overshoot(client, deadline))
            latencies.append(_cancel_latency(client, cancel_delay))
    return {
        "trials": trials,
        "deadline_s": deadline,
        "cancel_delay_s": cancel_delay,
        "deadline_overshoot": summary_ms(overshoots),
        "cancel_latency": summary_ms(latencies),
    }


if __name__ == "__main__":
    import pprint
    import sys

    pprint.pprint(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
