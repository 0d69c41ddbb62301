"""RSS growth of a process reading 1,000,000 updates through one ``TaskStream``.

Runs in a fresh child process (``python bench/memory.py --updates N``), so
nothing else the benchmark did is in its heap; it prints one JSON object.
The server (``_recorded.py endless``, another child) generates the updates
on the fly. RSS is read from ``/proc/self/statm`` after ``warmup`` updates
(the baseline: imports, the connection, the decoder's buffers are all there
by then), then every ``sample_every`` updates and at the end; the growth is
the last sample minus the baseline, and the peak is reported as well.

Two bodies: updates without log lines (what the SDK itself keeps per update)
and updates with one short log line each (``TaskStream.logs`` keeps every
line seen, by design, so that stream grows with its logs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def measure(updates: int, logs: bool, warmup: int = 10_000, sample_every: int = 50_000) -> dict[str, Any]:
    """Read ``updates`` updates; return RSS baseline, samples, growth and peak (bytes)."""
    from bench._recorded import TASK_ID, RawServer
    from inferencesh import inference

    samples: list[tuple[int, int]] = []
    baseline = 0
    count = 0
    started = time.perf_counter()
    with RawServer("endless", events=updates, logs=logs) as server:
        with inference(api_key="bench", base_url=server.url) as client, client.tasks.stream(TASK_ID) as stream:
            for _update in stream:
                count += 1
                if count == warmup:
                    gc.collect()
                    baseline = rss_bytes()
                    samples.append((count, baseline))
                elif count % sample_every == 0:
                    samples.append((count, rss_bytes()))
            elapsed = time.perf_counter() - started
            kept_logs = len(stream.logs)
            assert _update.is_terminal and _update.event_id == updates
        gc.collect()
        end = rss_bytes()
    samples.append((count, end))
    return {
        "updates": count,
        "logs_per_update": 1 if logs else 0,
        "log_lines_kept": kept_logs,
        "seconds": elapsed,
        "rss_baseline_bytes": baseline,
        "rss_end_bytes": end,
        "rss_peak_bytes": max(rss for _, rss in samples),
        "rss_growth_bytes": end - baseline,
        "samples": samples,
    }


def run(updates: int = 1_000_000) -> dict[str, Any]:
    """Both bodies, each in its own child process; results keyed ``no_logs`` and ``with_logs``."""
    results: dict[str, Any] = {}
    for key, flag in (("no_logs", "--no-logs"), ("with_logs", "--logs")):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--updates", str(updates), flag],
            check=True,
            capture_output=True,
            text=True,
        )
        results[key] = json.loads(out.stdout)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1_000_000)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--logs", dest="logs", action="store_true", default=False)
    group.add_argument("--no-logs", dest="logs", action="store_false")
    args = parser.parse_args()
    print(json.dumps(measure(args.updates, args.logs)))


if __name__ == "__main__":
    main()
