"""The official Python SDK (``inferencesh==0.36.0`` from PyPI) against ``infsh serve --dialect hosted``.

Its package is also called ``inferencesh``, so it lives in a venv of its own,
``<repo>/.official-venv`` (created on first use, reused after), and runs in
a subprocess whose working directory is not the repo root (where our
package would shadow it). Creating the venv needs pip access to PyPI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".official-venv"
VERSION = "0.36.0"
DRIVER = Path(__file__).with_name("driver.py")
_CHECK = "import importlib.metadata as m, inferencesh; print(m.version('inferencesh'), inferencesh.__file__)"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _clean_env() -> dict[str, str]:
    dropped = ("PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("INFERENCE_")}


def _installed(tmp: Path) -> bool:
    if not _python().exists():
        return False
    done = subprocess.run([str(_python()), "-c", _CHECK], cwd=tmp, env=_clean_env(), capture_output=True, text=True)
    if done.returncode != 0:
        return False
    version, where = done.stdout.split()
    return version == VERSION and Path(where).resolve().is_relative_to(VENV.resolve())


@pytest.fixture(scope="session")
def official_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv holding the official SDK, installed from PyPI when missing."""
    tmp = tmp_path_factory.mktemp("official-cwd")
    if not _installed(tmp):
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        pip = [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip.append(f"inferencesh=={VERSION}")
        done = subprocess.run(pip, cwd=tmp, env=_clean_env(), capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not _installed(tmp):
            pytest.fail(f"could not install inferencesh=={VERSION} from PyPI:\n{done.stdout}\n{done.stderr}")
    return _python()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def hosted_url() -> Iterator[str]:
    """``infsh serve --dialect hosted`` in a subprocess, at speed 5."""
    port = _free_port()
    command = [sys.executable, "-m", "inferencesh", "serve", "--dialect", "hosted", "--port", str(port), "--speed", "5"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else "infsh serve exited"
            try:
                if requests.get(f"{url}/tasks/none", timeout=1).status_code == 404:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "infsh serve did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def drive(official_python: Path, hosted_url: str, tmp_path: Path) -> Any:
    """Run one scenario of ``driver.py`` with the official SDK; returns what it printed (JSON)."""

    def run(scenario: str) -> Any:
        env = {**_clean_env(), "INFERENCE_API_KEY": "inf_official_test", "INFERENCE_BASE_URL": hosted_url}
        done = subprocess.run(
            [str(official_python), str(DRIVER), scenario, hosted_url],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run
