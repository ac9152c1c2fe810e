"""Shared test set-up: quiet TensorFlow, and helpers to run the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


def _session_folder(tmp_path_factory, variable: str, name: str):
    """A fresh folder named by environment `variable` for the session (then restored)."""
    folder = tmp_path_factory.mktemp(name)
    previous = os.environ.get(variable)
    os.environ[variable] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = previous


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    """Generated builtin data (driving's simulated frames) goes to one cache per session,
    shared by in-process and CLI runs, and never into the user's ~/.cache."""
    yield from _session_folder(tmp_path_factory, "DEEPFIELD_CACHE", "cache")


@pytest.fixture(scope="session", autouse=True)
def config_dir(tmp_path_factory):
    """Saved presets (`tune --save-preset`) go to one folder per session, and a user's
    own presets in ~/.config/deepfield never change what a test's --config finds."""
    yield from _session_folder(tmp_path_factory, "DEEPFIELD_CONFIG_DIR", "presets")


def run_cli(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`deepfield ARGS` in a fresh process (needed where TF's devices must be set at start)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def run_outside_repo(script: str, *args: str, cwd: Path, timeout: int = 300) -> dict:
    """`python -c script ARGS` in a fresh process run from `cwd` (not the repository, so
    nothing of Deepfield is importable), as a model server would load an export: the
    JSON object on its last line of output. A failed run fails the test with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def cli(capsys):
    """`deepfield ARGS` in this process: returns (exit code, stdout, stderr)."""
    from pipelines.cli import main

    def call(*args: str):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """`trained_run(domain, config, overrides, task=, data=)`: a finished Run, trained
    once per session for each distinct setting and shared by every test that asks.

    The harness (tests/harness) and the per-domain tests ask with the same tiny
    settings (tests/harness/tiny.py), so one run serves both.
    """
    import pipelines

    runs = {}

    def train(domain, config=None, overrides=(), *, task=None, data=None):
        key = (domain, config, tuple(overrides), task, data)
        if key not in runs:
            path = tmp_path_factory.mktemp(f"{domain}-{config or task or 'run'}") / "run"
            api = getattr(pipelines, domain)
            runs[key] = api.train(
                config=config, data=data, overrides=list(overrides), run_dir=path, task=task
            )
        return runs[key]

    return train


@pytest.fixture(scope="session")
def domain_run(trained_run):
    """`domain_run(name)`: the registered domain's tiny run (tests/harness/tiny.py)."""
    from tests.harness.tiny import tiny

    def get(name):
        settings = tiny(name)
        return trained_run(
            name, settings.config, settings.overrides, task=settings.task, data=settings.data
        )

    return get


@pytest.fixture(scope="session")
def exported_run(domain_run, tmp_path_factory):
    """`exported_run(name)`: (ExportResult, root) of the domain's tiny run, exported once
    per session under the domain's default name (the harness and vision's export tests)."""
    import pipelines

    done = {}

    def export(name):
        if name not in done:
            root = tmp_path_factory.mktemp(f"{name}-serving")
            done[name] = (getattr(pipelines, name).export(domain_run(name), to=root), root)
        return done[name]

    return export


def errors_before_tensorflow(calls: list[str], cwd: Path) -> list[str | None]:
    """Run Python API calls (source, e.g. "pipelines.vision.train(data='csv:x')") in a
    fresh process; each call's UserError message (None if it raised none). Asserts that
    none of them imported TensorFlow: bad input is refused before TF starts."""
    import json

    script = (
        "import json, sys\n"
        "import pipelines\n"
        "from shared.errors import UserError\n"
        "errors = []\n"
        f"for call in {calls!r}:\n"
        "    try:\n"
        "        eval(call, {'pipelines': pipelines})\n"
        "        errors.append(None)\n"
        "    except UserError as err:\n"
        "        errors.append(str(err))\n"
        "print(json.dumps({'errors': errors, 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tensorflow"] is False, "a bad-input check imported TensorFlow"
    return result["errors"]
