"""The soak (``bench/soak.py``) at N = 200: faults of every kind, K at once, nothing lost, nothing leaked.

The full run (``python bench/soak.py --tasks 10000``) is a benchmark; this is
its small, always-on form. The server is a LocalServer in a child process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import MODES, format_summary, main, run

pytestmark = pytest.mark.timeout(120)


def test_200_faulty_streams_lose_nothing_and_leak_nothing() -> None:
    summary = run(200, concurrency=16, seed=7, speed=20.0, progress=False)
    report = format_summary(summary)
    assert summary["checked_tasks"] == 200, report
    assert summary["lost"] == summary["duplicated"] == summary["out_of_order"] == 0, report
    assert summary["log_mismatches"] == summary["status_mismatches"] == 0, report
    assert summary["untyped_exceptions"] == [], report
    leaks = summary["leaks"]
    assert leaks["server_open_connections"] == 0 and leaks["client_sockets_to_server"] == 0, report
    assert leaks["threads"] == [], report
    # Every mode was drawn, and the faults really happened on the wire.
    assert set(summary["modes_drawn"]) == set(MODES), report
    answers = summary["server_stream_requests"]
    assert answers.get("503", answers.get(503, 0)) > 0 and answers.get("429", answers.get(429, 0)) > 0, report
    assert summary["server_run_requests"]["retried_with_same_key"] > 0, report
    # The only typed errors are the malformed events' ProtocolErrors (no resume, by design).
    assert all(name.startswith("ProtocolError [") and "malformed" in name for name in summary["typed_errors"]), report
    assert summary["ok"], report


def test_main_writes_the_summary_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    assert main(["--tasks", "30", "--concurrency", "8", "--seed", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True
