"""The hosted dialect's read path (HOSTED.md): NDJSON throughput, update cost, deltas, idle streams, import time.

Sections (each returns a dict of figures; ``run.py`` prints them):

* ``throughput``: a pre-recorded hosted body (``_recorded.py hosted``: the
  TaskDTO, then N partial updates with a log line each, the last completed),
  NDJSON, close-delimited and chunked (one HTTP chunk per object). Readers:
  the SDK (``client.tasks.stream`` with ``dialect="hosted"``,
  ``stream_format="ndjson"``); the official SDK's reader recipe
  (``inferencesh==0.36.0``: requests' ``iter_lines(decode_unicode=True,
  chunk_size=8192)``, skip empty lines, ``strip``, ``json.loads``); the naive
  floor (a raw socket, ``split(b"\\n")``, ``json.loads`` of every line that
  starts with ``{``, which on a chunked body skips the chunk-size lines).
  Every reader reads the same body: rates are objects/s. Interleaved with
  them, the SDK on the PROTOCOL.md body of the same N updates, for the cost
  of one hosted ``TaskUpdate`` against one PROTOCOL.md ``TaskUpdate``.
* ``deltas``: an ``infsh/llm``-style answer in 4-character ``delta`` events
  (``_recorded.py deltas``), the loop reading ``update.partial_output`` each
  time: tokens/s for a 4,096-token answer (median of 5), and the time at
  which a 1 MB answer (262,144 deltas) reaches 128 KB, 256 KB, 512 KB and
  1 MB (linear: each doubling doubles the time; quadratic: quadruples it).
* ``idle``: N hosted streams on one client (``client.stream_many``, N =
  1,000), tasks that send only heartbeats (``infsh/sleep`` for an hour with a
  ``mute`` fault after the opening snapshot) from a LocalServer child process
  with a 1 s heartbeat: the client's RSS and CPU over an idle window.
* ``imports``: ``python -c "import inferencesh"`` wall time, this package
  against the official one (its own venv, from a directory outside the
  repository), alternated, median of several runs; a bare ``python -c pass``
  of each interpreter alongside.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._recorded import STREAM_PATH, TASK_ID, RawServer
from bench.throughput import read_sdk as read_sdk_v1  # the SDK on the PROTOCOL.md body, for the cost per update

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_PYTHON = ROOT / ".official-venv" / "bin" / "python"
NDJSON = "application/x-ndjson"
CHECKPOINTS = (128 * 1024, 256 * 1024, 512 * 1024, 1024 * 1024)

# -- readers ----------------------------------------------------------------------------


def sdk_client(url: str, fmt: str = "ndjson", **settings: Any) -> Any:
    from inferencesh import inference

    return inference(api_key="bench", base_url=url, dialect="hosted", stream_format=fmt, **settings)


def read_sdk(url: str) -> int:
    """The SDK's hosted NDJSON stream; returns the number of ``TaskUpdate``s."""
    count = 0
    with sdk_client(url) as client, client.tasks.stream(TASK_ID) as stream:
        for update in stream:
            count += 1
            last = update
    assert last.is_terminal
    return count


def read_official(url: str) -> int:
    """The official SDK's NDJSON reader recipe (inferencesh 0.36.0, ``Client._iter_ndjson``)."""
    import requests

    response = requests.get(url + STREAM_PATH, stream=True, headers={"Accept": NDJSON})
    count = 0
    try:
        for line in response.iter_lines(decode_unicode=True, chunk_size=8192):
            if not line:
                continue
            line = line.strip()
            if not line:
                continue
            json.loads(line)
            count += 1
    finally:
        response.close()
    return count


def floor_objects(url: str, accept: str = NDJSON) -> Any:
    """The naive floor as a generator of decoded objects: raw socket, ``split(b"\\n")``, ``json.loads``."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n\r\n"
            % (STREAM_PATH.encode(), host.encode(), accept.encode())
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
            lines = (buffer + data).split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line[:1] == b"{":
                    yield loads(line)


def read_floor(url: str) -> int:
    count = 0
    for _ in floor_objects(url):
        count += 1
    return count


def _timed(reader: Callable[[str], int], url: str) -> tuple[float, int]:
    start = time.perf_counter()
    count = reader(url)
    return time.perf_counter() - start, count


# -- throughput and update cost ---------------------------------------------------------


def throughput(events: int = 50_000, repeat: int = 3) -> dict[str, Any]:
    """Objects/s of each reader on the hosted NDJSON body, both framings; the SDK's µs per update, hosted and v1."""
    objects = events + 1
    seconds: dict[str, list[float]] = {}
    updates: dict[str, int] = {}
    readers: dict[str, Callable[[str], int]] = {"floor": read_floor, "official": read_official, "sdk": read_sdk}
    with (
        RawServer("hosted", events=events, framing="close", fmt="ndjson") as close,
        RawServer("hosted", events=events, framing="chunked", fmt="ndjson") as chunked,
        RawServer("recorded", events=events, framing="close") as v1_close,
        RawServer("recorded", events=events, framing="chunked") as v1_chunked,
    ):
        urls = {"close": close.url, "chunked": chunked.url}
        v1_urls = {"close": v1_close.url, "chunked": v1_chunked.url}
        for reader in readers.values():  # warm-up: imports, first connections
            reader(close.url)
        read_sdk_v1(v1_close.url)
        for _ in range(repeat):
            for framing in ("close", "chunked"):
                for name, reader in readers.items():
                    elapsed, count = _timed(reader, urls[framing])
                    expected = objects if name != "sdk" else None
                    if expected is not None and count != expected:
                        raise AssertionError(f"{name} read {count} objects, expected {expected}")
                    seconds.setdefault(f"{name}_{framing}", []).append(elapsed)
                    updates[f"{name}_{framing}"] = count
                elapsed, count = _timed(read_sdk_v1, v1_urls[framing])
                if count != events:
                    raise AssertionError(f"the SDK read {count} PROTOCOL.md updates, expected {events}")
                seconds.setdefault(f"sdk_v1_{framing}", []).append(elapsed)
                updates[f"sdk_v1_{framing}"] = count
    median = {key: statistics.median(values) for key, values in seconds.items()}
    rates = {key: objects / value for key, value in median.items() if not key.startswith("sdk_v1")}
    us_per_update = {
        framing: {
            "hosted": median[f"sdk_{framing}"] / updates[f"sdk_{framing}"] * 1e6,
            "v1": median[f"sdk_v1_{framing}"] / updates[f"sdk_v1_{framing}"] * 1e6,
        }
        for framing in ("close", "chunked")
    }
    return {
        "events": events,
        "objects": objects,
        "repeat": repeat,
        "seconds": seconds,
        "updates": updates,
        "objects_per_s": rates,
        "ratios": {
            framing: {
                "sdk_to_floor": rates[f"sdk_{framing}"] / rates[f"floor_{framing}"],
                "sdk_to_official": rates[f"sdk_{framing}"] / rates[f"official_{framing}"],
                "official_to_floor": rates[f"official_{framing}"] / rates[f"floor_{framing}"],
            }
            for framing in ("close", "chunked")
        },
        "us_per_update": us_per_update,
        "hosted_to_v1": {f: v["hosted"] / v["v1"] for f, v in us_per_update.items()},
    }


# -- deltas -----------------------------------------------------------------------------


def _read_deltas(url: str, checkpoints: tuple[int, ...] = (), budget: float = 300.0) -> dict[str, Any]:
    """Read a deltas body, touching ``partial_output`` on every update; the times it reached ``checkpoints``."""
    marks: dict[int, float] = {}
    pending = list(checkpoints)
    length = updates = 0
    final = None
    start = time.perf_counter()
    with sdk_client(url) as client, client.tasks.stream(TASK_ID) as stream:
        for update in stream:
            updates += 1
            partial = update.partial_output
            if partial is not None:
                length = len(partial.get("response", ""))
                while pending and length >= pending[0]:
                    marks[pending.pop(0)] = time.perf_counter() - start
            if update.is_terminal:
                final = update.output
            elif time.perf_counter() - start > budget:
                break  # past the budget: what was reached is the curve
    return {
        "seconds": time.perf_counter() - start,
        "updates": updates,
        "length": length,
        "marks": marks,
        "final_length": len(final["response"]) if final else None,
    }


def deltas(tokens: int = 4096, big: int = 1024 * 1024, size: int = 4, repeat: int = 5) -> dict[str, Any]:
    """Tokens/s into ``partial_output`` (a ``tokens``-delta answer), and the curve of a ``big``-byte answer."""
    big_tokens = big // size
    checkpoints = tuple(c for c in CHECKPOINTS if c <= big)
    with (
        RawServer("deltas", events=tokens, framing="chunked", fmt="ndjson", delta_bytes=size) as small,
        RawServer("deltas", events=big_tokens, framing="chunked", fmt="ndjson", delta_bytes=size) as large,
    ):
        _read_deltas(small.url)  # warm-up
        runs = []
        for _ in range(repeat):
            result = _read_deltas(small.url)
            if result["length"] != tokens * size or result["final_length"] != tokens * size:
                raise AssertionError(f"the answer was {result['length']} characters, expected {tokens * size}")
            runs.append(result["seconds"])
        curve = _read_deltas(large.url, checkpoints)
    elapsed = statistics.median(runs)
    marks = {str(k): v for k, v in curve["marks"].items()}
    times = [curve["marks"].get(c) for c in checkpoints]
    doubling = [b / a for a, b in zip(times, times[1:]) if a and b]
    return {
        "tokens": tokens,
        "delta_bytes": size,
        "seconds": runs,
        "tokens_per_s": tokens / elapsed,
        "big_bytes": big,
        "big_tokens": big_tokens,
        "big_seconds": curve["seconds"],
        "big_updates": curve["updates"],
        "big_tokens_per_s": (curve["length"] / size) / curve["seconds"],
        "big_complete": curve["length"] >= big,
        "curve_s": marks,
        "doubling_ratios": doubling,  # 2.0 linear, 4.0 quadratic
    }


# -- idle streams -----------------------------------------------------------------------


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def idle(
    streams: int = 1000, window: float = 60.0, heartbeat: float = 1.0, reconcile_interval: float = 30.0
) -> dict[str, Any]:
    """RSS and CPU of one client holding ``streams`` hosted streams that get only heartbeats, over ``window`` s.

    The mute fault fires on every connection (``times: -1``), so a stream the
    client reconnects after a reconcile (``GET /tasks/{id}`` after
    ``reconcile_interval`` s of heartbeats alone) still gets only heartbeats.
    """
    import psutil

    from bench._localserver import ServerProcess

    _raise_nofile(4 * streams + 256)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    config = {"app": "infsh/sleep", "input": {"seconds": 3600, "_faults": [{"kind": "mute", "after": 1, "times": -1}]}}
    with ServerProcess(speed=1, heartbeat=heartbeat, dialect="hosted") as server:
        client = sdk_client(server.url, reconcile_interval=reconcile_interval)
        seen: set[int] = set()
        updates = 0
        failure: list[BaseException] = []
        merged = client.stream_many([config] * streams, max_workers=streams)

        def consume() -> None:
            nonlocal updates
            try:
                for index, _update in merged:
                    seen.add(index)
                    updates += 1
            except BaseException as exc:
                failure.append(exc)

        consumer = threading.Thread(target=consume, name="bench-idle-consumer", daemon=True)
        opened = time.monotonic()
        consumer.start()
        deadline = opened + 120
        while time.monotonic() < deadline and not failure:
            if len(seen) >= streams and server.ask("open_streams") >= streams:
                break
            time.sleep(0.2)
        open_s = time.monotonic() - opened
        server_open = server.ask("open_streams")
        if failure or server_open < streams:
            merged.close()
            client.close()
            raise RuntimeError(f"only {server_open} of {streams} streams open ({failure[:1]})")
        time.sleep(min(2.0, window / 10))  # the opening burst settles
        requests_before = len(server.ask("requests"))
        updates_before = updates
        cpu0 = process.cpu_times()
        t0 = time.monotonic()
        rss: list[int] = []
        while time.monotonic() - t0 < window:
            rss.append(process.memory_info().rss)
            time.sleep(min(1.0, window / 20))
        elapsed = time.monotonic() - t0
        cpu1 = process.cpu_times()
        rss.append(process.memory_info().rss)
        threads = process.num_threads()
        server_open_end = server.ask("open_streams")
        during = server.ask("requests")[requests_before:]
        requests_during = len(during)
        reads_during = sum(1 for r in during if r["method"] == "GET" and not r["path"].endswith("/stream"))
        updates_during = updates - updates_before
        merged.close()
        consumer.join(30)
        client.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "streams": streams,
        "window_s": elapsed,
        "heartbeat_s": heartbeat,
        "open_s": open_s,
        "rss_before_mb": rss_before / 1e6,
        "rss_peak_mb": max(rss) / 1e6,
        "rss_end_mb": rss[-1] / 1e6,
        "cpu_s": cpu,
        "cpu_share": cpu / elapsed,
        "threads": threads,
        "server_open_streams": server_open_end,
        "requests_during": requests_during,
        "task_reads_during": reads_during,
        "stream_requests_during": requests_during - reads_during,
        "updates_during": updates_during,
        "reconcile_interval_s": reconcile_interval,
    }


# -- import time ------------------------------------------------------------------------


def _wall(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return time.perf_counter() - start


def imports(runs: int = 9) -> dict[str, Any]:
    """``python -c "import inferencesh"``: this package (cwd: the repository) and the official one (cwd: a temp dir)."""
    if not OFFICIAL_PYTHON.exists():
        raise FileNotFoundError(OFFICIAL_PYTHON)
    outside = tempfile.gettempdir()
    ours = [sys.executable, "-c", "import inferencesh"]
    official = [str(OFFICIAL_PYTHON), "-c", "import inferencesh"]
    # The official package must be the one imported: its version, read the same way.
    version = subprocess.run(
        [str(OFFICIAL_PYTHON), "-c", "import importlib.metadata as m; print(m.version('inferencesh'))"],
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    samples: dict[str, list[float]] = {"ours": [], "official": [], "ours_bare": [], "official_bare": []}
    for argv, cwd in ((ours, str(ROOT)), (official, outside)):  # warm the file cache
        _wall(argv, cwd)
    for _ in range(runs):
        samples["ours"].append(_wall(ours, str(ROOT)))
        samples["official"].append(_wall(official, outside))
        samples["ours_bare"].append(_wall([sys.executable, "-c", "pass"], str(ROOT)))
        samples["official_bare"].append(_wall([str(OFFICIAL_PYTHON), "-c", "pass"], outside))
    median = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {
        "runs": runs,
        "official_version": version,
        "ms": median,
        "samples_ms": {k: [x * 1000 for x in v] for k, v in samples.items()},
        "ratio": median["ours"] / median["official"],
        "ours_over_bare_ms": median["ours"] - median["ours_bare"],
        "official_over_bare_ms": median["official"] - median["official_bare"],
    }


def run(sizes: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    sizes = sizes or {}
    return {
        "throughput": throughput(sizes.get("hosted_events", 50_000), sizes.get("hosted_repeat", 3)),
        "deltas": deltas(sizes.get("delta_tokens", 4096), sizes.get("delta_big", 1024 * 1024)),
    }


if __name__ == "__main__":
    import pprint

    what = sys.argv[1] if len(sys.argv) > 1 else "throughput"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    sections: dict[str, Callable[[], Any]] = {
        "throughput": lambda: throughput(n or 10_000, 1),
        "deltas": lambda: deltas(big=n or 256 * 1024),
        "idle": lambda: idle(n or 100, 10.0),
        "imports": lambda: imports(5),
    }
    pprint.pprint(sections[what]())
