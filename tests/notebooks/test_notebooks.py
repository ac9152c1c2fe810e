"""Every registered domain's notebook, and every topic notebook, runs top to bottom (in
quick mode) without an error.

The domain list comes from the registry: `notebooks/<domain>.ipynb` (or the domain's
`notebook`), and the run folder it trains under DEEPFIELD_RUNS from `notebook_run`.
Topic notebooks (one subject across domains) are listed in TOPICS with the run folders
they must leave.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.domains import all_domains

REPO = Path(__file__).resolve().parents[2]
DOMAINS = {domain.name: domain for domain in all_domains()}


# topic notebook -> the run folders (under DEEPFIELD_RUNS) it trains
TOPICS = {
    "search_and_compression": (
        "digits",
        "search",
        "search_cv",
        "digits_small",
        "pruned80",
        "distilled",
    )
}


def notebook_path(domain) -> Path:
    name = domain.notebook or f"{domain.name}.ipynb"
    return REPO / "notebooks" / name


def all_notebooks() -> dict[str, Path]:
    """Every notebook the tests know: the domains' and the topics'."""
    found = {name: notebook_path(domain) for name, domain in DOMAINS.items()}
    return found | {topic: REPO / "notebooks" / f"{topic}.ipynb" for topic in TOPICS}


def execute(path: Path, tmp_path: Path, monkeypatch) -> list:
    """Run the notebook in quick mode with its runs under tmp_path; its outputs."""
    monkeypatch.setenv("DEEPFIELD_QUICK", "1")
    monkeypatch.setenv("DEEPFIELD_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DEEPFIELD_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    return outputs


# TensorFlow's C++ start-up lines (absl writes them before logging is set up, whatever
# TF_CPP_MIN_LOG_LEVEL says): noise in a notebook a reader opens on GitHub.
TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:)", re.M)


def test_saved_outputs_carry_no_tensorflow_log_lines():
    for name, path in all_notebooks().items():
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.output_type == "stream" else ""
                assert not TF_LOG_LINE.search(text), (
                    f"{name}: strip TensorFlow's start-up lines from its saved outputs: {text[:200]}"
                )


def test_every_notebook_is_known():
    on_disk = set((REPO / "notebooks").glob("*.ipynb"))
    assert on_disk == set(all_notebooks().values())


# A Jupyter kernel and a quick training run per domain (about 20 s each on 2 cores):
# `make test-all` and .ci/run execute them; `make test` leaves them out.
@pytest.mark.large
@pytest.mark.parametrize("name", list(DOMAINS))
def test_notebook_executes(name, tmp_path, monkeypatch):
    domain = DOMAINS[name]
    path = notebook_path(domain)
    assert path.is_file(), f"domain {name} has no notebook at {path.relative_to(REPO)}"
    execute(path, tmp_path, monkeypatch)
    if domain.notebook_run:
        assert (tmp_path / "runs" / domain.notebook_run / "metrics.json").is_file()
    else:
        assert list((tmp_path / "runs").rglob("metrics.json")), "the notebook trained no run"


@pytest.mark.large
@pytest.mark.parametrize("topic", list(TOPICS))
def test_topic_notebook_executes(topic, tmp_path, monkeypatch):
    execute(all_notebooks()[topic], tmp_path, monkeypatch)
    for run in TOPICS[topic]:
        assert list((tmp_path / "runs" / run).rglob("metrics.json")), run
    assert list((tmp_path / "configs").rglob("*.yaml")), "no preset saved"
