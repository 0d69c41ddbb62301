"""Delivery latency: one update every 10 ms, received − sent, for each reader in the same run.

The ticker server (``_recorded.py ticker``, a child process) writes one
chunked event every ``interval`` seconds with its send time
(``time.monotonic()``, a clock shared by every process on Linux) in
``partial_output.sent``; each reader notes ``time.monotonic()`` as the update
reaches its loop. Readers run one after the other on fresh connections: the
floor (raw socket, ``split(b"\\n\\n")``, ``json.loads``), the SDK's
``TaskStream``, requests + sseclient-py, httpx + httpx-sse. The first
``warmup`` updates of each are dropped.

``run_hosted`` does the same on the hosted paths (``_recorded.py
hosted_ticker``: the TaskDTO, then one partial update every ``interval``
seconds whose log line carries the send time), NDJSON and SSE: the SDK
(``dialect="hosted"``, that ``stream_format``) against the naive floor of
that format (NDJSON: raw socket, ``split(b"\\n")``, ``json.loads``; SSE: the
floor above).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from typing import Any, Callable

from bench._recorded import STREAM_PATH, TASK_ID, RawServer
from bench.throughput import floor_events

_Samples = Callable[[str], Iterator[float]]


def _sdk(url: str) -> Iterator[float]:
    from inferencesh import inference

    with inference(api_key="bench", base_url=url) as client, client.tasks.stream(TASK_ID) as stream:
        for update in stream:
            now = time.monotonic()
            yield now - update.partial_output["sent"]


def _floor(url: str) -> Iterator[float]:
    for data in floor_events(url):
        now = time.monotonic()
        yield now - data["partial_output"]["sent"]


def _sseclient(url: str) -> Iterator[float]:
    import requests
    import sseclient

    response = requests.get(url + STREAM_PATH, stream=True, headers={"Accept": "text/event-stream"})
    try:
        for event in sseclient.SSEClient(response).events():
            data = json.loads(event.data)
            now = time.monotonic()
            yield now - data["partial_output"]["sent"]
    finally:
        response.close()


def _httpx_sse(url: str) -> Iterator[float]:
    import httpx
    from httpx_sse import connect_sse

    with httpx.Client() as client, connect_sse(client, "GET", url + STREAM_PATH) as source:
        for sse in source.iter_sse():
            if sse.event != "update":
                continue
            data = json.loads(sse.data)
            now = time.monotonic()
            yield now - data["partial_output"]["sent"]


def _sent(obj: Any) -> float | None:
    """The send time in a hosted partial update's log line (None for the opening TaskDTO)."""
    if "fields" not in obj:
        return None
    return float(obj["data"]["logs"][0]["content"].split()[1])


def _hosted_floor(fmt: str) -> _Samples:
    def read(url: str) -> Iterator[float]:
        from bench.hosted import floor_objects

        objects = floor_objects(url) if fmt == "ndjson" else floor_events(url)
        for obj in objects:
            now = time.monotonic()
            sent = _sent(obj)
            if sent is not None:
                yield now - sent

    return read


def _hosted_sdk(fmt: str) -> _Samples:
    def read(url: str) -> Iterator[float]:
        from bench.hosted import sdk_client

        with sdk_client(url, fmt) as client, client.tasks.stream(TASK_ID) as stream:
            for update in stream:
                now = time.monotonic()
                if update.logs:
                    yield now - float(update.logs[-1].split()[1])

    return read


READERS: dict[str, _Samples] = {
    "floor": _floor,
    "sdk": _sdk,
    "sseclient": _sseclient,
    "httpx_sse": _httpx_sse,
}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [value * 1000.0 for value in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def run(updates: int = 500, interval: float = 0.01, warmup: int = 10) -> dict[str, Any]:
    """p50/p99 of received − sent for every reader, and the SDK's p99 added over the floor's."""
    results: dict[str, Any] = {"updates": updates, "interval_s": interval, "warmup": warmup, "readers": {}}
    with RawServer("ticker", events=updates + warmup, interval=interval) as server:
        for name, reader in READERS.items():
            samples = list(reader(server.url))
            if len(samples) != updates + warmup:
                raise AssertionError(f"{name} saw {len(samples)} updates, expected {updates + warmup}")
            results["readers"][name] = summary_ms(samples[warmup:])
    readers = results["readers"]
    results["sdk_p99_added_ms"] = readers["sdk"]["p99_ms"] - readers["floor"]["p99_ms"]
    results["sdk_p50_added_ms"] = readers["sdk"]["p50_ms"] - readers["floor"]["p50_ms"]
    return results


def run_hosted(updates: int = 500, interval: float = 0.01, warmup: int = 10) -> dict[str, Any]:
    """p50/p99 of received − sent on the hosted paths (NDJSON, SSE): the floor and the SDK, and the p99 added."""
    results: dict[str, Any] = {"updates": updates, "interval_s": interval, "warmup": warmup, "paths": {}}
    for fmt in ("ndjson", "sse"):
        path: dict[str, Any] = {}
        with RawServer("hosted_ticker", events=updates + warmup, interval=interval, fmt=fmt) as server:
            for name, reader in (("floor", _hosted_floor(fmt)), ("sdk", _hosted_sdk(fmt))):
                samples = list(reader(server.url))
                if len(samples) != updates + warmup:
                    raise AssertionError(f"{name} ({fmt}) saw {len(samples)} updates, expected {updates + warmup}")
                path[name] = summary_ms(samples[warmup:])
        path["sdk_p99_added_ms"] = path["sdk"]["p99_ms"] - path["floor"]["p99_ms"]
        path["sdk_p50_added_ms"] = path["sdk"]["p50_ms"] - path["floor"]["p50_ms"]
        results["paths"][fmt] = path
    return results


if __name__ == "__main__":
    import pprint
    import sys

    pprint.pprint(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
    pprint.pprint(run_hosted(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
