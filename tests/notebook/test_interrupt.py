"""Jupyter's interrupt while a cell streams: the cell ends at once, the connection closes, the client goes on."""

from __future__ import annotations

import asyncio
import threading
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import text_of

pytestmark = pytest.mark.notebook

SETUP = "from inferencesh import inference\nclient = inference()"
SILENT_STREAM = """\
stalled = {"app": "infsh/sleep", "input": {"seconds": 1, "_faults": [{"kind": "stall", "after": 2, "seconds": 60}]}}
for update in client.run(stalled, stream=True):
    print(update.status, flush=True)
"""
AGAIN = """\
updates = list(client.run({"app": "infsh/flux-schnell", "input": {"prompt": "again"}}, stream=True))
print("again:", updates[-1].status, len(updates))
"""


def test_interrupting_a_streaming_cell_releases_the_connection(kernel_name: str, kernel_env: LocalServer) -> None:
    server = kernel_env
    notebook = new_notebook(cells=[new_code_cell(SETUP), new_code_cell(SILENT_STREAM), new_code_cell(AGAIN)])
    runner = NotebookClient(notebook, timeout=60, kernel_name=kernel_name, allow_errors=True)
    setup, streaming, again = notebook.cells
    interrupted_at: list[float] = []

    def interrupt_when_silent() -> None:
        # The cell printed "running": the server now sends nothing for 60 s and the kernel is blocked in a read.
        if wait_until(lambda: "running" in text_of(streaming) and server.open_streams == 1, timeout=30):
            time.sleep(0.2)
            interrupted_at.append(time.monotonic())
            asyncio.run(runner.km.interrupt_kernel())

    with runner.setup_kernel():
        runner.execute_cell(setup, 0)
        interrupter = threading.Thread(target=interrupt_when_silent)
        interrupter.start()
        runner.execute_cell(streaming, 1)
        ended_at = time.monotonic()
        interrupter.join()
        assert interrupted_at, "the cell never reached the silent part of the stream"
        assert ended_at - interrupted_at[0] < 5  # not the 60 s stall
        errors = [output for output in streaming.outputs if output.output_type == "error"]
        assert [error.ename for error in errors] == ["KeyboardInterrupt"]
        assert wait_until(lambda: server.open_streams == 0 and server.open_connections == 0, timeout=5), (
            server.open_streams,
            server.open_connections,
        )

        runner.execute_cell(again, 2)  # the same client in the same kernel streams again to the end
        assert text_of(again).startswith("again: completed")
        assert not [output for output in again.outputs if output.output_type == "error"]
    nbformat.validate(notebook)
