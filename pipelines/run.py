"""`Run`: a finished (or resumable) training run, as notebooks and the CLI see it."""

from __future__ import annotations

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
        from pipelines.api import api_for

        return api_for(self.domain)

    @property
    def verbs(self) -> list[str]:
        """What this run's domain can do with it (`evaluate`, `predict`, `play`, ...)."""
        return [v for v in self._api().domain.verbs() if v not in ("train", "tune")]

    def load_model(self):
        """The trained Keras model (loaded in safe mode)."""
        from shared.model_io import load_model

        return load_model(self.dir.model_path)

    def evaluate(
        self, data: str | None = None, split: str = "test", out: str | None = None, **options
    ):
        """Metrics on a split of the run's data (or `data`); rewrites metrics.json or `out`."""
        return self._api().evaluate(self, data, split, out, **options)

    def predict(self, inputs: list[str] | str, **options):
        """One JSON-able dict per input."""
        return self._api().predict(self, inputs, **options)

    def explain(self, inputs: list[str] | None = None, out: str | None = None) -> Path:
        """An explanation plot for `inputs` (or held-out examples); returns its path."""
        return self._api().explain(self, inputs, out)

    def export(self, to: str | Path, **options: Any):
        """Export for TF Serving (see `deepfield <domain> export`); returns the result."""
        return self._api().export(self, to=to, **options)

    def __getattr__(self, name: str):
        # A domain's own verbs (`run.play()`, `run.monitor(data)`); a verb of another
        # domain is a UserError that names this run's verbs.
        if name.startswith("_") or name in ("dir", "config", "domain"):
            raise AttributeError(name)
        from pipelines.api import is_any_verb

        if not is_any_verb(name):
            raise AttributeError(f"Run has no attribute {name!r}")
        return self._api().verb(name, self)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if isinstance(v, float)}
        return f"Run({str(self.path)!r}, domain={self.domain!r}, metrics={shown})"


def load_run(path: str | Path) -> Run:
    """Open a finished run directory."""
    return Run(path)
