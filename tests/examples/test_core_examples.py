"""Every core streaming example runs against the local server and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferencesh.server import LocalServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The first line of an example that runs against the embedded local server.
UNSET_HINT = "unset INFERENCE_BASE_URL to use the real service"
EMBEDDED = re.compile(r"\(using the local simulation server at http://127\.0\.0\.1:\d+: (?P<hint>.*)\)")

EXPECTED = {
    "basic_stream.py": [
        "Status: received",
        "Status: running",
        "Status: completed",
        "Output: {'image': 'http://127.0.0.1:",  # the PNG's URL on the local server, as the hosted service
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
    first = done.stdout.splitlines()[0]
    assert first == f"(using the local simulation server at {base_url}: {UNSET_HINT})"
    for expected in EXPECTED[name]:
        assert expected in done.stdout, f"{expected!r} not in the output of {name}:\n{done.stdout}"


def run_basic_stream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "basic_stream.py"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_examples_also_run_without_a_configured_server() -> None:
    """No key, no base URL: the embedded local server, and the first line says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    done = run_basic_stream(env)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    matched = EMBEDDED.fullmatch(first)
    assert matched and matched["hint"] == "set INFERENCE_API_KEY to use the real service", first
    assert rest[0] == "Status: received" and "Status: completed" in rest


def test_local_flag_runs_the_embedded_server_even_with_a_key_and_a_base_url() -> None:
    env = {**os.environ, "INFERENCE_API_KEY": "inf_real_key", "INFERENCE_BASE_URL": "http://192.0.2.1:9"}
    done = run_basic_stream(env, "--local")
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    matched = EMBEDDED.fullmatch(first)
    assert matched and matched["hint"] == "drop --local to use the real service", first
    assert "Status: completed" in rest
