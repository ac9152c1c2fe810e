"""Shared test set-up: quiet TensorFlow, and helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def cli(capsys):
    """`deepfield ARGS` in this process: returns (exit code, stdout, stderr)."""
    from pipelines.cli import main

    def call(*args: str):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call
