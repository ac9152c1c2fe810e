"""The notebooks run top to bottom (in quick mode) without an error."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]


# Notebook -> the run folder it trains under DEEPFIELD_RUNS.
RUN_FOLDERS = {"vision": "digits", "rl": "cartpole_ppo", "finance": "credit"}


@pytest.mark.parametrize("name", ["vision", "rl", "finance"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIELD_QUICK", "1")
    monkeypatch.setenv("DEEPFIELD_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    assert (tmp_path / "runs" / RUN_FOLDERS[name] / "metrics.json").is_file()
