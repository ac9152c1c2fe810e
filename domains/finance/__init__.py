"""Finance: fraud detection and credit scoring on tables, from a CSV to a served decision.

The domain's contract (`shared.domain.Domain`); its verbs import their TensorFlow
modules (`task`, `serving`) only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.finance.config import FinanceConfig
from shared.domain import Domain, Option, SmokeRun, TourLeg, Verb, register_domain


@register_domain
class FinanceDomain(Domain):
    name = "finance"
    summary = "Fraud detection and credit scoring on tables: train, evaluate, predict, explain, export, monitor."
    tasks = ("fraud", "credit")
    config_class = FinanceConfig
    data_specs = ("builtin", "csv", "jsonl")
    task_configs = {"fraud": "fraud", "credit": "credit"}
    strategies = ("auto", "default", "one-device", "mirrored")
    # Keras fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585).
    strategies_note = "finance trains with Keras fit, which fails under multi-worker (keras#20585)"
    extra_verbs = (
        Verb(
            "monitor",
            "Population stability index of the score and each feature vs the training split.",
            (
                Option(
                    "--data", "data", help="csv:PATH of new rows (target not needed)", required=True
                ),
                Option("--out", "out", "path", "JSON report (default RUN/monitor.json)"),
            ),
        ),
    )
    tour_legs = (
        TourLeg(
            "finance",
            "credit scoring on UCI German credit: FeatureSpace MLP, calibrated, scorecard",
            "roc_auc",
            0.75,
            config="credit",
            quick=("train.epochs=5",),
        ),
        TourLeg(
            "fraud",
            "fraud detection on the synthetic transaction stream (0.44% fraud), split by time",
            "pr_auc",
            0.8,
            config="fraud",
            quick=("train.epochs=2",),
        ),
    )
    # German credit (1,000 rows), 12 epochs.
    smoke_run = SmokeRun("credit", ("train.epochs=12",), resume=("train.epochs=20",))
    compress_methods = {  # trained through shared.training.trainer.fit
        "fraud": ("prune", "quantize", "distill"),
        "credit": ("prune", "quantize", "distill"),
    }
    task_module = "domains.finance.task"
    order = 30
    notebook_run = "credit"

    def check(self, config: FinanceConfig) -> None:
        """Read, type and split the table (pandas only) so that a missing target, a bad
        column or a fairness attribute of the wrong kind is refused before TensorFlow
        starts; training reads it again (a few seconds at most for the builtins)."""
        super().check(config)
        from domains.finance import data

        config.check_runtime()
        data.load(config)

    def load_data(self, config: FinanceConfig):
        """The typed, cleaned and split `TableData` a fraud or credit run trains on."""
        from domains.finance import data

        return data.load(config)

    def serving_spec(self, run, config):
        from domains.finance import serving

        return serving.serving_spec(run, config)

    def monitor(self, run, config, data: str, out: Path | None = None) -> dict[str, Any]:
        """Drift of `data` against the training split: PSI of the score and each feature."""
        from domains.finance import task

        self.check_data_spec(data)
        return task.monitor_data(run, config, data, Path(out) if out else None)

    def format_result(self, verb: str, result: Any) -> str | None:
        if verb != "monitor":
            return None
        import json

        lines = [f"score PSI {result['score_psi']:.4f} ({result['score_band']})"]
        for name, value in result["features"].items():
            lines.append(f"  {name:<28} {value['psi']:.4f}  {value['band']}")
        summary = {k: result[k] for k in ("score_psi", "shifted", "plot")}
        return "\n".join(lines + [json.dumps(summary)])
