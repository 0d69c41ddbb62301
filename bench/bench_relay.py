"""Added latency per event through the browser relay, versus reading the upstream directly.

    python -m bench.bench_relay [--events 300] [--interval 0.02] [--browsers 1 20]

Three processes, as deployed: the upstream (``inferencesh.server.serve``), the relay
(``inferencesh.relay.serve_relay``: waitress), and this one, which reads the same live task
twice at once: directly from the upstream (``GET /tasks/{id}/stream`` with the key) and
through the relay (``GET /api/inference/stream?taskId=``) as N browsers would. Both readers
are the same raw http.client loop, timestamping each event as its bytes arrive, so the
difference per event id is what the relay adds: the SDK's parse into a ``TaskUpdate``, the
hand-over between threads, the re-encoding and waitress' write.

The task is ``infsh/sleep``: one event every ``--interval`` seconds, so each event is
relayed on its own (no batching hides the cost). Events the readers got as a replay (sent
before both were connected) are left out. Prints p50/p90/p99/max in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Optional

KEY = "bench-relay-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(code: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Reader(threading.Thread):
    """Reads one event stream, recording ``perf_counter()`` at the arrival of each event id."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers
        self.arrived: dict[int, float] = {}
        self.opened: Optional[float] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", self.path, headers={"Accept": "text/event-stream", **self.headers})
            response = conn.getresponse()
            self.opened = time.perf_counter()
            buffer = b""
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"id:"):
                            self.arrived[int(line[3:])] = now
            conn.close()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def run_once(upstream_port: int, relay_port: int, events: int, browsers: int) -> list[float]:
    """One task, one direct reader and ``browsers`` relay readers; the added latency of each relayed event (s)."""
    conn = http.client.HTTPConnection("127.0.0.1", relay_port, timeout=30)
    body = json.dumps({"app": "infsh/sleep", "input": {"seconds": events}})
    conn.request("POST", "/api/inference/proxy", body=body, headers={"Content-Type": "application/json"})
    task_id = json.loads(conn.getresponse().read())["data"]["id"]
    conn.close()
    direct = Reader(upstream_port, f"/tasks/{task_id}/stream", {"Authorization": f"Bearer {KEY}"})
    relayed = [Reader(relay_port, f"/api/inference/stream?taskId={task_id}", {}) for _ in range(browsers)]
    for reader in (direct, *relayed):
        reader.start()
    for reader in (direct, *relayed):
        reader.join(events * 1.0 + 60)
        if reader.error is not None:
            raise reader.error
    opened = max(r.opened or 0.0 for r in (direct, *relayed))
    added: list[float] = []
    for reader in relayed:
        for event_id, at in reader.arrived.items():
            sent = direct.arrived.get(event_id)
            if sent is not None and sent > opened + 0.005:
                added.append(at - sent)
    return added


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events per task (default 300)")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between events (default 0.02)")
    parser.add_argument("--browsers", type=int, nargs="+", default=[1, 20], help="relay readers per run")
    args = parser.parse_args(argv)

    upstream_port, relay_port = free_port(), free_port()
    env = {**os.environ, "INFERENCE_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    speed = 1.0 / args.interval
    upstream = start(
        "from inferencesh.server import serve; "
        f"serve(port={upstream_port}, api_key={KEY!r}, speed={speed}, log_level='warning')",
        env,
    )
    relay = start(
        f"from inferencesh.relay import serve_relay; serve_relay(port={relay_port}, "
        f"upstream='http://127.0.0.1:{upstream_port}')",
        env,
    )
    try:
        wait_listening(upstream_port)
        wait_listening(relay_port)
        run_once(upstream_port, relay_port, 20, 1)  # warm-up: imports, pools, threads
        print(f"relay added latency per event (ms), one event every {args.interval * 1000:.0f} ms, waitress")
        print(f"{'browsers':>8} {'events':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
        for browsers in args.browsers:
            added = run_once(upstream_port, relay_port, args.events, browsers)
            ms = [value * 1000 for value in added]
            print(
                f"{browsers:>8} {len(ms):>7} {statistics.median(ms):>7.2f} {percentile(ms, 0.9):>7.2f} "
                f"{percentile(ms, 0.99):>7.2f} {max(ms):>7.2f}"
            )
    finally:
        for process in (relay, upstream):
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
