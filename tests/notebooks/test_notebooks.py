"""Every registered domain's notebook runs top to bottom (in quick mode) without an error.

The list comes from the domain registry: `notebooks/<domain>.ipynb` (or the domain's
`notebook`), and the run folder it trains under DEEPFIELD_RUNS from `notebook_run`.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.domains import all_domains

REPO = Path(__file__).resolve().parents[2]
DOMAINS = {domain.name: domain for domain in all_domains()}


def notebook_path(domain) -> Path:
    name = domain.notebook or f"{domain.name}.ipynb"
    return REPO / "notebooks" / name


# A Jupyter kernel and a quick training run per domain (about 20 s each on 2 cores):
# `make test-all` and .ci/run execute them; `make test` leaves them out.
@pytest.mark.large
@pytest.mark.parametrize("name", list(DOMAINS))
def test_notebook_executes(name, tmp_path, monkeypatch):
    domain = DOMAINS[name]
    path = notebook_path(domain)
    assert path.is_file(), f"domain {name} has no notebook at {path.relative_to(REPO)}"
    monkeypatch.setenv("DEEPFIELD_QUICK", "1")
    monkeypatch.setenv("DEEPFIELD_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    if domain.notebook_run:
        assert (tmp_path / "runs" / domain.notebook_run / "metrics.json").is_file()
    else:
        assert list((tmp_path / "runs").rglob("metrics.json")), "the notebook trained no run"
