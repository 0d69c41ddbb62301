"""examples/notebook.ipynb runs top to bottom in a real kernel and shows what each cell promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from inferencesh.server import LocalServer

from .conftest import KEY, text_of

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"


def widget_states(notebook: Any) -> list[dict[str, Any]]:
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return [model["state"] for model in state.get("state", {}).values()]


def test_the_example_notebook_runs_and_shows_each_pattern(kernel_name: str, kernel_env: LocalServer) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(notebook, timeout=120, kernel_name=kernel_name, resources=resources).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    setup, stream, bar, logs, cancel, many = code

    assert kernel_env.url in text_of(setup) and KEY not in text_of(setup)
    printed = text_of(stream)
    assert printed.index("Status: received") < printed.index("Status: running") < printed.index("Status: completed")
    assert "Output keys: ['image']" in printed

    # A widget, not text: tqdm.auto picked the notebook bar; its final state is the status and the full count.
    assert any("application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in bar.outputs)
    states = widget_states(notebook)
    assert any(str(s.get("value")).startswith("completed:") for s in states)  # the description is the status
    assert any(s.get("bar_style") == "success" and s.get("max") == 8 and s.get("value") == 8 for s in states)
    # log lines above the bar
    assert "Drawing a placeholder image\n" in text_of(bar) and "Task completed" in text_of(bar)

    assert "17 log lines in" in text_of(logs)
    assert "Stream cancelled; the task is cancelled" in text_of(cancel)
    assert sorted(text_of(many).splitlines()) == [
        "[0] A red fox: completed",
        "[1] A blue whale: completed",
        "[2] A green parrot: completed",
    ]
