"""What a run was made with: versions, the code's commit, the command line, wall time.

Recorded in every run's status.json (`environment`) and model card, so a figure can be
traced to the code and libraries that produced it. Reads package metadata only: no
TensorFlow import.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(root: Path = REPO) -> str | None:
    """The commit of the Deepfield checkout (with `+dirty` for local changes), if any."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(call: str | None = None) -> str:
    """How this run was started: the `deepfield ...` command line, or else the Python
    API call (`pipelines.vision.train(...)` from a notebook or script) when given."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("deepfield", "cli.py"):
        return shlex.join(["deepfield", *argv[1:]])
    if call:
        return call
    return shlex.join(argv) if argv else sys.executable


def environment(call: str | None = None) -> dict[str, Any]:
    """Versions, commit and command line of this process (see `command_line`)."""
    return {
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "deepfield": _version("deepfield"),
        "git_commit": git_commit(),
        "command": command_line(call),
        "platform": platform.platform(),
    }
