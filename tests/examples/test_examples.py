"""examples/parallel_streams.py and examples/dask_fanout.py run against a local server that requires the key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencesh.server import LocalServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "inf_examples_key_from_the_environment"


@pytest.fixture(scope="module")
def locked() -> Iterator[LocalServer]:
    with LocalServer(speed=100, api_key=KEY) as server:
        yield server


def run_example(name: str, server: LocalServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INFERENCE_BASE_URL": server.url, "INFERENCE_API_KEY": KEY}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=EXAMPLES,
    )


def test_parallel_streams(locked: LocalServer) -> None:
    done = run_example("parallel_streams.py", locked)
    assert done.returncode == 0, done.stderr
    notice, *lines = done.stdout.splitlines()
    assert (
        notice
        == f"(using the local simulation server at {locked.url}: unset INFERENCE_BASE_URL to use the real service)"
    )
    merged, results = lines[:3], lines[3:]
    prompts = ["A red fox", "A blue whale", "A green parrot"]
    assert sorted(merged) == sorted(f"{prompt}: completed after 17 updates" for prompt in prompts)
    assert [line.split(":")[0] for line in results] == [*prompts, "a failing app"]
    assert all(", image at http" in line for line in results[:3])
    assert results[3].startswith("a failing app: TaskFailed: task tsk_") and "Simulated failure" in results[3]


@pytest.mark.slow
def test_dask_fanout_gathers_outputs_and_failures(locked: LocalServer) -> None:
    pytest.importorskip("distributed", reason="the dask extra: pip install -e '.[dask]'")
    locked.clear_requests()
    done = run_example("dask_fanout.py", locked, "--tasks", "5", "--failures", "2", "--workers", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:]  # after the line that says the server is the local simulation
    assert lines[0] == "5 completed, 2 failed"
    assert [line.split("]")[0].strip() for line in lines[1:]] == [f"[{i}" for i in range(7)]
    assert all("{'image': 'http://127.0.0.1:" in line for line in lines[1:6])  # the PNG's URL, cut at 50
    assert "TaskFailed: task tsk_" in lines[6] and "tile 0 is cursed" in lines[6] and "tile 1 is cursed" in lines[7]
    runs = [r for r in locked.requests if r.method == "POST" and r.path == "/apps/run"]
    assert len(runs) == 7 and all(r.status == 200 for r in runs)  # the workers took the key from their environment
    assert all(r.authorization == f"Bearer {KEY}" for r in runs)
