"""The ``infsh`` command as a user runs it: a subprocess against a LocalServer started here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, Callable

import pytest

from inferencesh import Client, inference
from inferencesh.server import LocalServer

SECRET = "inf_cli_s3cr3t_never_printed"


@pytest.fixture(scope="package")
def server() -> Iterator[LocalServer]:
    """Speed 10: infsh/sleep {"seconds": 300} runs 30 s with 10 ticks a second."""
    with LocalServer(speed=10, heartbeat=1.0, retry_ms=50) as running:
        yield running


@pytest.fixture()
def client(server: LocalServer) -> Iterator[Client]:
    with inference(api_key=SECRET, base_url=server.url) as made:
        yield made


@pytest.fixture()
def env(server: LocalServer) -> dict[str, str]:
    """The environment of an ``infsh`` run: the key and the server from the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    return {**clean, "INFERENCE_API_KEY": SECRET, "INFERENCE_BASE_URL": server.url, "PYTHONUNBUFFERED": "1"}


def infsh(
    args: Sequence[str], env: dict[str, str], *, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inferencesh ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "inferencesh", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(args: Sequence[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -m inferencesh ARGS`` with stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "inferencesh", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def read_until(stream: IO[str], predicate: Callable[[str], bool], limit: int = 200) -> str:
    """Read lines until one satisfies ``predicate``; returns it (AssertionError at EOF or after ``limit``)."""
    for _ in range(limit):
        line = stream.readline()
        assert line, "the process closed its output first"
        if predicate(line):
            return line
    raise AssertionError(f"no matching line within {limit} lines")


def interrupt(process: subprocess.Popen[str], timeout: float = 10) -> tuple[int, float]:
    """Send SIGINT (Ctrl-C); returns (exit code, seconds it took to exit)."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout)
    return code, time.monotonic() - started
