"""Throughput: updates/s reading one pre-recorded body of N TaskUpdate events from loopback.

Readers, each timed from connect to the last event, every one of them
parsing every event's JSON:

* ``sdk``: ``client.tasks.stream(task_id)`` — the whole SDK path (SSE decoding
  made exact, ``TaskUpdate`` objects, dedupe and bookkeeping);
* ``sseclient``: requests + sseclient-py + ``json.loads`` exactly as
  sseclient-py's README shows (``SSEClient(requests.get(url, stream=True))``);
* ``httpx_sse``: httpx + httpx-sse (``connect_sse(...).iter_sse()``) + ``json.loads``;
* ``floor``: a raw socket, ``split(b"\\n\\n")`` and ``json.loads`` of each event's
  data: no HTTP library, no SSE rules, the least work that still parses.

The floor reads the close-delimited body (it has no chunk decoder); the others
read it too, and again with chunked framing (one chunk per event, as uvicorn
sends), so the chunk-decoding cost of each HTTP library shows separately.
Each (reader, framing) is run ``repeat`` times, interleaved, and the median kept.
"""

from __future__ import annotations

import json
import socket
import statistics
import time
from typing import Any, Callable

from bench._recorded import STREAM_PATH, TASK_ID, RawServer

Reader = Callable[[str], int]


def read_sdk(url: str) -> int:
    from inferencesh import inference

    count = 0
    with inference(api_key="bench", base_url=url) as client, client.tasks.stream(TASK_ID) as stream:
        for update in stream:
            count += 1
            last = update
    assert last.is_terminal
    return count


def read_sseclient(url: str) -> int:
    import requests
    import sseclient

    response = requests.get(url + STREAM_PATH, stream=True, headers={"Accept": "text/event-stream"})
    client = sseclient.SSEClient(response)
    count = 0
    for event in client.events():
        json.loads(event.data)
        count += 1
    response.close()
    return count


def read_httpx_sse(url: str) -> int:
    import httpx
    from httpx_sse import connect_sse

    count = 0
    with httpx.Client() as client, connect_sse(client, "GET", url + STREAM_PATH) as source:
        for sse in source.iter_sse():
            if sse.event != "update":
                continue  # httpx-sse also hands out the ``retry:``-only block, as an event without data
            json.loads(sse.data)
            count += 1
    return count


def floor_events(url: str) -> Any:
    """The floor reader as a generator of decoded JSON objects (close-delimited bodies only)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n" % (STREAM_PATH.encode(), host.encode())
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        buffer = buffer.partition(b"\r\n\r\n")[2]
        loads = json.loads
        while True:
            data = sock.recv(262144)
            if not data:
                return
            blocks = (buffer + data).split(b"\n\n")
            buffer = blocks.pop()
            for block in blocks:
                start = block.find(b"data: ")
                if start >= 0:
                    yield loads(block[start + 6 :])


def read_floor(url: str) -> int:
    count = 0
    for _ in floor_events(url):
        count += 1
    return count


READERS: dict[str, Reader] = {
    "sdk": read_sdk,
    "sseclient": read_sseclient,
    "httpx_sse": read_httpx_sse,
    "floor": read_floor,
}


def _time(reader: Reader, url: str, expected: int) -> float:
    start = time.perf_counter()
    count = reader(url)
    elapsed = time.perf_counter() - start
    if count != expected:
        raise AssertionError(f"{reader.__name__} read {count} updates, expected {expected}")
    return count / elapsed


def run(events: int = 100_000, repeat: int = 3) -> dict[str, Any]:
    """Updates/s of each reader and framing (median of ``repeat``), with ratios against the floor."""
    rates: dict[str, list[float]] = {}
    with (
        RawServer("recorded", events=events, framing="close") as close,
        RawServer("recorded", events=events, framing="chunked") as chunked,
    ):
        for name in READERS:  # warm-up: imports, first connections
            READERS[name](close.url)
        for _ in range(repeat):
            for name, reader in READERS.items():
                rates.setdefault(name, []).append(_time(reader, close.url, events))
                if name != "floor":
                    rates.setdefault(name + "_chunked", []).append(_time(reader, chunked.url, events))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    floor = medians["floor"]
    return {
        "events": events,
        "repeat": repeat,
        "updates_per_s": medians,
        "runs": rates,
        "ratio_to_floor": {name: rate / floor for name, rate in medians.items()},
        "ratio_to_sseclient": {name: rate / medians["sseclient"] for name, rate in medians.items()},
    }


if __name__ == "__main__":
    import pprint
    import sys

    pprint.pprint(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, repeat=1))
