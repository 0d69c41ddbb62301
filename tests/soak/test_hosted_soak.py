"""The hosted soak (``bench/soak.py --dialect hosted``) at N = 200: every hosted fault, NDJSON and SSE mixed.

Nothing lost, repeated or out of order: each task's statuses are its
``events`` history, its log lines its log records' lines, its final output
the server's; nothing left open. The full run (``--tasks 10000``) is a
benchmark; this is its small, always-on form.
"""

from __future__ import annotations

import pytest

from bench.soak import HOSTED_MODES, compare_sequences, fold, format_summary, run

pytestmark = pytest.mark.timeout(120)


def test_200_faulty_hosted_streams_lose_nothing_and_leak_nothing() -> None:
    summary = run(200, concurrency=24, seed=11, speed=20.0, progress=False, dialect="hosted")
    report = format_summary(summary)
    assert summary["checked_tasks"] == 200, report
    assert summary["lost"] == summary["duplicated"] == summary["out_of_order"] == 0, report
    assert summary["log_mismatches"] == summary["status_mismatches"] == summary["output_mismatches"] == 0, report
    assert summary["untyped_exceptions"] == [], report
    leaks = summary["leaks"]
    assert leaks["server_open_connections"] == 0 and leaks["client_sockets_to_server"] == 0, report
    assert leaks["server_open_streams"] == 0 and leaks["threads"] == [], report
    # Every hosted fault was drawn, both formats ran, and the faults happened on the wire.
    assert set(summary["modes_drawn"]) == set(HOSTED_MODES), report
    assert set(summary["stream_formats"]) == {"ndjson", "sse"}, report
    answers = {int(k): v for k, v in summary["server_stream_requests"].items()}
    assert answers.get(429, 0) > 0 and sum(answers.get(code, 0) for code in (500, 502, 503)) > 0, report
    assert summary["server_run_requests"]["retried_with_same_key"] > 0, report
    assert summary["client_task_reads"] > 0, report  # drops and heartbeat-only stalls were reconciled
    # The only typed errors are the malformed objects' ProtocolErrors (no resume, by design).
    assert all(name.startswith("ProtocolError [") and "malformed" in name for name in summary["typed_errors"]), report
    assert summary["ok"], report


def test_the_checker_counts_what_it_should() -> None:
    history = ["received", "queued", "running", "completed"]
    assert compare_sequences(history, history, complete=True) == (0, 0, 0)
    assert compare_sequences(history[:2], history, complete=False) == (0, 0, 0)
    assert compare_sequences(history[:2], history, complete=True) == (2, 0, 0)
    assert compare_sequences(["received", "running", "completed"], history, complete=True) == (1, 0, 0)
    assert compare_sequences(["received", "queued", "queued", "running"], history, complete=False)[1] == 1
    assert compare_sequences(["queued", "received", "running", "completed"], history, complete=True)[2] == 1
    assert fold(["a", "a", "b", "a"]) == ["a", "b", "a"]
