"""Every core streaming example runs against the local server and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencesh.server import LocalServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "basic_stream.py": [
        "Status: received",
        "Status: running",
        "Status: completed",
        "Output: {'image': 'data:image/png",
    ],
    "update_types.py": [
        "progress 1/8 (12%)",
        "log: ",
        "partial output at step 1",
        "completed with keys: ['image']",
        "failed: no GPU",
    ],
    "progress_bar.py": ["10/10 running", "completed"],
    "collect_logs.py": ["log lines:"],
    "stream_processor.py": ["final: completed", "statuses: ['received', 'queued'", "duration_s: "],
    "threaded_streams.py": ["A red fox: completed", "A blue whale: completed", "A green parrot: completed"],
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with LocalServer(speed=200) as server:
        yield server.url


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, base_url: str) -> None:
    env = {**os.environ, "INFERENCE_BASE_URL": base_url, "INFERENCE_API_KEY": "example-key"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=60, cwd=EXAMPLES
    )
    assert done.returncode == 0, done.stderr
    for expected in EXPECTED[name]:
        assert expected in done.stdout, f"{expected!r} not in the output of {name}:\n{done.stdout}"


def test_examples_also_run_without_a_configured_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "basic_stream.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Status: completed" in done.stdout
