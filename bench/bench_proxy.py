"""Added latency per streamed update through the relay's ``/proxy`` (the JavaScript SDK's ``proxyUrl``),
versus reading the local server directly.

    python -m bench.bench_proxy [--updates 300] [--interval 0.02] [--runs 3]

Three processes, as deployed: the upstream (``inferencesh.server.serve``), the relay
(``serve_relay``: waitress) and this one, which reads the same live task twice at once:
directly (``GET /tasks/{id}/stream`` with the key) and through the proxy (``GET
/api/inference/proxy?__inf_target=...`` with ``x-inf-target-url``, as the SDK does). Both
readers are the same raw http.client loop, timestamping each update as its bytes arrive; the
difference per update is what the proxy adds (the upstream read, a thread hand-over, waitress'
write). Two streams: the hosted dialect's NDJSON (what the SDK reads; updates matched by their
bytes) and PROTOCOL.md's SSE (matched by id).

The task is ``infsh/sleep``, one update every ``--interval`` seconds, so each update is relayed
on its own. (``infsh/count`` emits its updates in one burst, and on the hosted wire only its
final line, since progress is no hosted field.) Updates that arrived before both readers were
connected are left out. Prints p50/p90/p99/max in milliseconds over ``--runs`` tasks.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import threading
import time
from typing import Optional
from urllib.parse import quote

from bench.bench_relay import free_port, percentile, start, wait_listening

KEY = "bench-proxy-key"


class Reader(threading.Thread):
    """Reads one stream, recording ``perf_counter()`` at the arrival of each update (by id or by its bytes)."""

    def __init__(self, port: int, path: str, headers: dict[str, str], sse: bool) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers, self.sse = port, path, headers, sse
        self.arrived: dict[object, float] = {}
        self.opened: Optional[float] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        accept = "text/event-stream" if self.sse else "application/x-ndjson"
        separator = b"\n\n" if self.sse else b"\n"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", self.path, headers={"Accept": accept, **self.headers})
            response = conn.getresponse()
            assert response.status == 200, response.status
            self.opened = time.perf_counter()
            buffer = b""
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                buffer += chunk
                while separator in buffer:
                    block, buffer = buffer.split(separator, 1)
                    key = self._key(block)
                    if key is not None:
                        self.arrived.setdefault(key, now)
            conn.close()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _key(self, block: bytes) -> object:
        if not self.sse:
            return block if block.strip() else None
        for line in block.split(b"\n"):
            if line.startswith(b"id:"):
                return int(line[3:])
        return None


def run_once(upstream_port: int, relay_port: int, updates: int, sse: bool) -> list[float]:
    """One task read directly and through the proxy; the added latency of each update (s)."""
    base = f"http://127.0.0.1:{upstream_port}"
    conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
    body = json.dumps({"app": "infsh/sleep", "input": {"seconds": updates}})
    conn.request(
        "POST", "/apps/run", body=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    )
    answer = json.loads(conn.getresponse().read())
    task_id = answer.get("data", answer)["id"]
    conn.close()
    target = f"{base}/tasks/{task_id}/stream"
    direct = Reader(upstream_port, f"/tasks/{task_id}/stream", {"Authorization": f"Bearer {KEY}"}, sse)
    proxied = Reader(
        relay_port, f"/api/inference/proxy?__inf_target={quote(target, safe='')}", {"x-inf-target-url": target}, sse
    )
    for reader in (direct, proxied):
        reader.start()
    for reader in (direct, proxied):
        reader.join(updates * 1.0 + 60)
        if reader.error is not None:
            raise reader.error
    opened = max(r.opened or 0.0 for r in (direct, proxied))
    return [
        at - direct.arrived[key]
        for key, at in proxied.arrived.items()
        if key in direct.arrived and direct.arrived[key] > opened + 0.005
    ]


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=300, help="updates per task (default 300)")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between updates (default 0.02)")
    parser.add_argument("--runs", type=int, default=3, help="tasks per stream kind (default 3)")
    args = parser.parse_args(argv)
    env = {**os.environ, "INFERENCE_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    print(f"proxy added latency per update (ms), one update every {args.interval * 1000:.0f} ms, waitress")
    print(f"{'stream':>16} {'updates':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for dialect, sse, label in (("hosted", False, "hosted NDJSON"), ("v1", True, "PROTOCOL.md SSE")):
        upstream_port, relay_port = free_port(), free_port()
        upstream = start(
            "from inferencesh.server import serve; "
            f"serve(port={upstream_port}, api_key={KEY!r}, speed={1.0 / args.interval}, log_level='warning', "
            f"dialect={dialect!r})",
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
            run_once(upstream_port, relay_port, 20, sse)  # warm-up: imports, pools, threads
            added = [
                value * 1000
                for _ in range(args.runs)
                for value in run_once(upstream_port, relay_port, args.updates, sse)
            ]
            print(
                f"{label:>16} {len(added):>7} {statistics.median(added):>7.2f} {percentile(added, 0.9):>7.2f} "
                f"{percentile(added, 0.99):>7.2f} {max(added):>7.2f}"
            )
        finally:
            for process in (relay, upstream):
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
