"""200 parallel streams on one client (issue E): wall time, CPU, threads, server-side open streams.

``client.stream_many(configs)`` follows every task at once (one reader thread
per stream, one pooled connection each). The server is a ``LocalServer`` in a
child process, so the CPU figures are the client's alone
(``time.process_time()`` covers every thread of this process). Two loads:

* ``sleep``: 200 × ``infsh/sleep`` of 2 s (a running update and a tick per
  second): the streams are mostly idle; wall − 2 s is the fan-out overhead;
* ``count``: 200 × ``infsh/count`` of 500 updates: 100,000 updates arriving
  on 200 connections at once; aggregate updates/s.

A sampler thread records the peak thread count and the server's peak number
of open streams (all 200 must be open at the same moment).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench._localserver import ServerProcess


class _Peaks:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.threads = 0
        self.streams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.threads = max(self.threads, threading.active_count() - 1)  # not the sampler itself
            self.streams = max(self.streams, self.server.ask("open_streams"))

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _load(name: str, n: int) -> list[dict[str, Any]]:
    if name == "sleep":
        return [{"app": "infsh/sleep", "input": {"seconds": 2}} for _ in range(n)]
    return [{"app": "infsh/count", "input": {"n": 500}} for _ in range(n)]


def measure(load: str, n: int = 200) -> dict[str, Any]:
    from inferencesh import inference

    with ServerProcess(speed=1, heartbeat=5, retry_ms=100) as server:
        threads_before = threading.active_count()
        with inference(api_key="bench", base_url=server.url) as client:
            updates = 0
            finished = 0
            with _Peaks(server) as peaks:
                cpu = time.process_time()
                started = time.perf_counter()
                for _, update in client.stream_many(_load(load, n)):
                    updates += 1
                    finished += update.is_terminal
                wall = time.perf_counter() - started
                cpu = time.process_time() - cpu
        time.sleep(0.2)
        threads_after = threading.active_count()
        left_open = server.ask("open_connections")
    if finished != n:
        raise AssertionError(f"{finished} of {n} streams finished")
    return {
        "streams": n,
        "load": load,
        "updates": updates,
        "wall_s": wall,
        "client_cpu_s": cpu,
        "client_cpu_per_update_us": cpu / updates * 1e6,
        "updates_per_s": updates / wall,
        "peak_threads": peaks.threads,
        "threads_before": threads_before,
        "threads_left": threads_after - threads_before,
        "peak_server_open_streams": peaks.streams,
        "server_connections_left": left_open,
        "api": "client.stream_many",
    }


def run(n: int = 200) -> dict[str, Any]:
    return {"sleep": measure("sleep", n), "count": measure("count", n)}


if __name__ == "__main__":
    import pprint
    import sys

    pprint.pprint(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
