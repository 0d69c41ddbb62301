"""Benchmark of the local server: many idle streams at once, and events/s to one client.

Run from the repository root::

    .venv/bin/python bench/bench_server.py [--streams 1000] [--heartbeat 0.5] [--count 200000]

The server (a ``LocalServer``) runs in a child process, so its RSS is its own.
The client side is asyncio over raw sockets (a thread per stream would be too
heavy for a thousand). Phase 1 creates ``--streams`` ``infsh/sleep`` tasks,
opens one event stream per task, checks that the server reports them all open
at once and that every one of them receives heartbeats, and prints the time to
open them and the server's RSS. Phase 2 streams one ``infsh/count`` task of
``--count`` events to a single client and prints events per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import psutil  # type: ignore[import-untyped]

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _raise_nofile(target: int = 4096) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _server_process(conn: Connection, heartbeat: float) -> None:
    """Child: run a LocalServer and answer 'streams' / 'connections' / 'stop'."""
    _raise_nofile()
    from inferencesh.server import LocalServer

    # speed far below 1: a sleep task ticks every ~1000 s, so streams sit idle on heartbeats
    with LocalServer(speed=0.001, heartbeat=heartbeat) as server:
        conn.send(server.url)
        while True:
            command = conn.recv()
            if command == "streams":
                conn.send(server.open_streams)
            elif command == "connections":
                conn.send(server.open_connections)
            else:
                break
    conn.send("stopped")


def _post(path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("no content-length")


class _Streams:
    def __init__(self, n: int) -> None:
        self.open_at: list[float | None] = [None] * n
        self.pings = [0] * n
        self.opened = 0
        self.all_open = asyncio.Event()


async def _one_stream(host: str, port: int, index: int, state: _Streams, body: bytes) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(body)
        head = await reader.readuntil(b"\r\n\r\n")
        task = json.loads(await reader.readexactly(_content_length(head)))["data"]
        writer.write(
            f"GET /tasks/{task['id']}/stream HTTP/1.1\r\nHost: bench\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            if state.open_at[index] is None and b"retry:" in chunk:
                state.open_at[index] = time.monotonic()
                state.opened += 1
                if state.opened == len(state.open_at):
                    state.all_open.set()
            state.pings[index] += chunk.count(b": ping")
    finally:
        writer.close()


async def _many_streams(
    url: str, n: int, heartbeat: float, conn: Connection
) -> dict[str, float]:
    host, port = url.rsplit("//", 1)[1].split(":")
    state = _Streams(n)
    body = _post("/apps/run", {"app": "infsh/sleep", "input": {"seconds": 86400}})
    started = time.monotonic()
    readers = [
        asyncio.ensure_future(_one_stream(host, int(port), i, state, body)) for i in range(n)
    ]
    await asyncio.wait_for(state.all_open.wait(), 120)
    open_time = time.monotonic() - started
    conn.send("streams")
    server_streams = conn.recv()
    before = list(state.pings)
    window = 3 * heartbeat
    await asyncio.sleep(window)
    conn.send("streams")
    still_open = conn.recv()
    fresh = [after - b for after, b in zip(state.pings, before)]
    failed = [r for r in readers if r.done()]
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {
        "open_time_s": open_time,
        "server_open_streams": server_streams,
        "server_open_streams_after_window": still_open,
        "streams_with_heartbeats": sum(1 for f in fresh if f >= 1),
        "min_heartbeats_per_stream": min(fresh),
        "heartbeat_window_s": window,
        "readers_ended_early": len(failed),
    }


def _count_rate(url: str, n: int) -> dict[str, float]:
    host, port = url.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(_post("/apps/run", {"app": "infsh/count", "input": {"n": n}}))
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = _content_length(head)
        while len(rest) < length:
            rest += sock.recv(65536)
        task_id = json.loads(rest[:length])["data"]["id"]
        started = time.monotonic()
        sock.sendall(
            f"GET /tasks/{task_id}/stream HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        )
        received = 0
        events = 0
        tail = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
            window = tail + chunk
            events += window.count(b"event: update\n") - tail.count(b"event: update\n")
            tail = window[-32:]
            if window.endswith(b"\r\n0\r\n\r\n"):
                break
        took = time.monotonic() - started
    return {
        "events": events,
        "seconds": took,
        "events_per_s": events / took,
        "megabytes_per_s": received / took / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    _raise_nofile()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_server_process, args=(theirs, args.heartbeat), daemon=True)
    child.start()
    url = ours.recv()
    server = psutil.Process(child.pid)
    rss_idle = server.memory_info().rss
    print(f"server {url} (pid {child.pid}), idle RSS {rss_idle / 1e6:.1f} MB")

    streams = asyncio.run(_many_streams(url, args.streams, args.heartbeat, ours))
    rss_streams = server.memory_info().rss
    print(f"{args.streams} streams opened in {streams['open_time_s']:.2f} s")
    print(
        f"server reports {streams['server_open_streams']} open streams "
        f"({streams['server_open_streams_after_window']} after the heartbeat window)"
    )
    print(
        f"{streams['streams_with_heartbeats']}/{args.streams} streams got heartbeats in "
        f"{streams['heartbeat_window_s']:.1f} s (min {streams['min_heartbeats_per_stream']})"
    )
    print(
        f"server RSS with {args.streams} streams: {rss_streams / 1e6:.1f} MB "
        f"(+{(rss_streams - rss_idle) / 1e3 / args.streams:.1f} kB per stream)"
    )
    time.sleep(0.5)
    ours.send("connections")
    print(f"connections left open after the clients closed: {ours.recv()}")

    rate = _count_rate(url, args.count)
    print(
        f"infsh/count: {rate['events']:.0f} events in {rate['seconds']:.2f} s = "
        f"{rate['events_per_s']:,.0f} events/s ({rate['megabytes_per_s']:.1f} MB/s) to one client"
    )
    ours.send("stop")
    ours.recv()
    child.join(10)
    ok = (
        streams["server_open_streams"] == args.streams
        and streams["streams_with_heartbeats"] == args.streams
        and rate["events"] == args.count + 2
    )
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
