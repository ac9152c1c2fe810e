"""The run directory: one folder per training run, with a fixed layout.

    config.yaml  metrics.json  history.csv  model.keras  checkpoints/  tensorboard/
    plots/*.png  MODEL_CARD.md  log.txt  status.json  data_splits.json  inputs.json

`status.json` says whether the run is `running` or `complete`; a run is only marked
complete after `model.keras` has been written whole, so a killed run never claims to be
finished. Every file is written aside and renamed into place, so a reader never sees a
half-written file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from shared.errors import UserError

LOG = logging.getLogger("deepfield")
METRIC_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
DESCRIPTIVE_KEYS = frozenset({"split", "task", "domain"})
COUNT_KEYS = frozenset({"num_examples", "episodes"})


def np_number() -> type:
    """NumPy's scalar base type (imported late: run_dir is read before NumPy is needed)."""
    import numpy as np

    return np.number


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


class RunDir:
    """A run directory on disk and the files it holds."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # === Paths ===
    config_path = property(lambda self: self.path / "config.yaml")
    metrics_path = property(lambda self: self.path / "metrics.json")
    history_path = property(lambda self: self.path / "history.csv")
    model_path = property(lambda self: self.path / "model.keras")
    checkpoints = property(lambda self: self.path / "checkpoints")
    tensorboard = property(lambda self: self.path / "tensorboard")
    plots = property(lambda self: self.path / "plots")
    model_card_path = property(lambda self: self.path / "MODEL_CARD.md")
    log_path = property(lambda self: self.path / "log.txt")
    status_path = property(lambda self: self.path / "status.json")
    splits_path = property(lambda self: self.path / "data_splits.json")

    # === Opening ===
    @classmethod
    def open(cls, path: str | os.PathLike, *, require_complete: bool = True) -> RunDir:
        """Open an existing run; a folder that is not one is a UserError."""
        run = cls(path)
        if not run.path.is_dir():
            raise UserError(f"run directory {run.path} does not exist")
        if not run.config_path.is_file() or not run.status_path.is_file():
            raise UserError(f"{run.path} is not a run directory (no config.yaml/status.json)")
        if require_complete and not run.is_complete():
            raise UserError(
                f"run {run.path} is not complete (state: {run.status().get('state')}); "
                "rerun its train command to resume it"
            )
        return run

    def status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def is_complete(self) -> bool:
        return self.status().get("state") == "complete" and self.model_path.is_file()

    def set_status(self, state: str, **extra: Any) -> None:
        status = self.status()
        status.update(state=state, updated=time.strftime("%Y-%m-%dT%H:%M:%S"), **extra)
        write_json(self.status_path, status)

    # === Writing ===
    def prepare(self) -> None:
        for folder in (self.path, self.checkpoints, self.plots):
            folder.mkdir(parents=True, exist_ok=True)

    def write_metrics(self, metrics: dict[str, Any], *, path: Path | None = None) -> Path:
        """Write flat metrics: numbers under snake_case keys, plus the descriptive keys.

        The contract every domain keeps (DESIGN.md): besides `split`, `task` and
        `domain`, values are numbers (NaN written as null); breaking it is a bug.
        """
        flat: dict[str, Any] = {}
        for key, value in metrics.items():
            if not METRIC_KEY.match(key):
                raise ValueError(f"metric key {key!r} is not snake_case")
            if key in DESCRIPTIVE_KEYS:
                flat[key] = None if value is None else str(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np_number()):
                raise ValueError(f"metric {key!r} must be a number, got {value!r}")
            number = float(value)
            flat[key] = (
                None if math.isnan(number) else (int(number) if key in COUNT_KEYS else number)
            )
        target = Path(path) if path else self.metrics_path
        write_json(target, flat)
        return target

    def write_splits(
        self,
        source: str,
        splits: dict[str, Any],
        *,
        class_counts: dict[str, dict[str, int]] | None = None,
        **facts: Any,
    ) -> None:
        """data_splits.json, one schema for every domain.

        {"source": spec, "splits": {"train": {"size": n, ...}, ...}, ...facts}: each
        split at least has its size (and its `class_counts` where given, e.g. the
        shared splitter's report); facts say how the splits were made (seed, method,
        stratified, grouped_by, duplicates found across splits).
        """
        parts = {
            name: ({"size": int(value)} if isinstance(value, int) else dict(value))
            for name, value in splits.items()
        }
        for name, counts in (class_counts or {}).items():
            if name in parts:
                parts[name]["class_counts"] = counts
        from shared.data.splits import active_fold

        fold = active_fold()  # tune --cv: a fold run of a trial says which fold it holds
        if fold is not None and fold.cut:
            facts["cv"] = {"fold": fold.index, "folds": fold.count}
        write_json(self.splits_path, {"source": source, "splits": parts, **facts})

    def read_metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.metrics_path.read_text())
        except (OSError, ValueError):
            return {}

    def plot_paths(self) -> list[Path]:
        return sorted(self.plots.glob("*.png")) if self.plots.is_dir() else []

    # === Logging ===
    def attach_log(self) -> logging.Handler:
        """Send the `deepfield` logger (and TF's warnings) to log.txt as well."""
        self.path.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        LOG.setLevel(logging.INFO)
        return handler

    @staticmethod
    def detach_log(handler: logging.Handler) -> None:
        logging.getLogger().removeHandler(handler)
        handler.close()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
