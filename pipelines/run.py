"""`Run`: a finished (or resumable) training run, as notebooks and the CLI see it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from shared.run_dir import RunDir


class Run:
    """A run directory with the domain verbs attached (`evaluate`, `predict`, ...)."""

    def __init__(self, path: str | Path, *, require_complete: bool = True):
        self.dir = RunDir.open(path, require_complete=require_complete)
        self.config: dict[str, Any] = yaml.safe_load(self.dir.config_path.read_text())
        self.domain: str = self.dir.status().get("domain", "vision")

    @property
    def path(self) -> Path:
        return self.dir.path

    @property
    def metrics(self) -> dict[str, Any]:
        return self.dir.read_metrics()

    @property
    def history(self) -> list[dict[str, float]]:
        from shared.training.trainer import history_rows

        return history_rows(self.dir.history_path)

    @property
    def plots(self) -> list[Path]:
        return self.dir.plot_paths()

    @property
    def model_card(self) -> str:
        return self.dir.model_card_path.read_text()

    def _api(self):
        return importlib.import_module(f"pipelines.{self.domain}")

    def load_model(self):
        """The trained Keras model (loaded in safe mode)."""
        import keras

        import shared.zoo  # noqa: F401 - registers the zoo's custom layers for loading

        return keras.models.load_model(self.dir.model_path, safe_mode=True, compile=False)

    def evaluate(self, data: str | None = None, split: str = "test", out: str | None = None):
        return self._api().evaluate(self, data=data, split=split, out=out)

    def predict(self, inputs: list[str] | str):
        return self._api().predict(self, [inputs] if isinstance(inputs, str) else inputs)

    def explain(self, inputs: list[str] | None = None, out: str | None = None) -> Path:
        return self._api().explain(self, inputs or [], out=out)

    def play(self, out: str | Path | None = None, **options: Any) -> dict[str, Any]:
        """Play an episode into a GIF (RL runs); returns its path, return and length."""
        return self._api().play(self, out, **options)

    def monitor(self, data: str, out: str | None = None) -> dict[str, Any]:
        """Drift of new data against the training split (finance: PSI per feature)."""
        return self._api().monitor(self, data, out=out)

    def export(self, to: str | Path, **options: Any):
        """Export for TF Serving (see `deepfield <domain> export`); returns the result."""
        return self._api().export(self, to=to, **options)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if isinstance(v, float)}
        return f"Run({str(self.path)!r}, domain={self.domain!r}, metrics={shown})"


def load_run(path: str | Path) -> Run:
    """Open a finished run directory."""
    return Run(path)
