"""Notebooks executed in a real Jupyter kernel (nbclient + ipykernel) against a LocalServer started here."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from inferencesh.server import LocalServer

for _module in ("nbclient", "nbformat", "ipykernel"):
    pytest.importorskip(_module, reason="the notebook extra: pip install -e '.[notebook]'")

pytestmark = pytest.mark.notebook

KEY = "inf_notebook_key"


@pytest.fixture(scope="package")
def kernel_name() -> str:
    """A ``python3`` kernel for this interpreter: the venv's own, installed with ``--sys-prefix`` if missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True, capture_output=True)
    return "python3"


@pytest.fixture(scope="package")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=20, heartbeat=1.0, retry_ms=50) as running:
        yield running


@pytest.fixture()
def kernel_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """The kernel inherits this process's environment: point it at the test server."""
    monkeypatch.setenv("INFERENCE_BASE_URL", server.url)
    monkeypatch.setenv("INFERENCE_API_KEY", KEY)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets the kernel's debugger warning
    return server


def text_of(cell: Any) -> str:
    """Everything a cell printed (stdout and stderr streams)."""
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.output_type == "stream")
