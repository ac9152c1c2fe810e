"""Finance from Python: the functions the CLI and notebooks share.

from pipelines import finance
run = finance.train(config="credit")                     # builtin:german-credit
run.metrics["roc_auc"], run.plots, run.predict(['{"age": 30, ...}'])
finance.monitor(run, data="csv:new_applicants.csv")      # PSI drift report
finance.export(run, to="serving")                        # TF Serving SavedModel
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.finance.config import FinanceConfig
from pipelines import configs, runner
from pipelines.run import Run
from shared.errors import UserError

DOMAIN = "finance"
TASKS = ("fraud", "credit")


def resolve_config(
    config: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    task: str | None = None,
    **shortcuts: Any,
) -> FinanceConfig:
    """The validated config a `train` would use: `task` picks its named config by default."""
    if task is not None and task not in TASKS:
        raise UserError(f"finance tasks: {', '.join(TASKS)} (got --task {task})")
    resolved = configs.resolve(
        DOMAIN, FinanceConfig, config or task, overrides, **shortcuts, task=task
    )
    return resolved


def train(
    config: str | None = None,
    data: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | Path | None = None,
    *,
    task: str | None = None,
    strategy: str | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    epochs: int | None = None,
) -> Run:
    """Train a fraud or credit model and return its finished Run."""
    resolved = resolve_config(
        config,
        overrides,
        task=task,
        **{
            "data.source": data,
            "runtime.strategy": strategy,
            "runtime.seed": seed,
            "runtime.deterministic": deterministic,
            "train.epochs": epochs,
        },
    )
    path = Path(run_dir) if run_dir else runner.default_run_dir(DOMAIN, resolved.task)
    from domains.finance import task as finance_task  # TensorFlow loads once the config is good

    finished = runner.execute(DOMAIN, resolved, path, finance_task.train)
    return Run(finished.path)


def _open(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else Run(run)


def _config_of(run: Run) -> FinanceConfig:
    return FinanceConfig.model_validate(run.config)


def evaluate(
    run: Run | str | Path, data: str | None = None, split: str = "test", out: str | None = None
) -> dict[str, Any]:
    """Metrics of a finished run on a split of its data, or on every row of a CSV."""
    from domains.finance import task

    run = _open(run)
    return task.evaluate(
        run.dir, _config_of(run), source=data, split=split, out=Path(out) if out else None
    )


def predict(run: Run | str | Path, inputs: list[str]) -> list[dict[str, Any]]:
    """Probability, decision (and score, reason codes) for rows of CSV files or JSON objects."""
    from domains.finance import task

    run = _open(run)
    return task.predict(run.dir, _config_of(run), list(inputs))


def explain(run: Run | str | Path, inputs: list[str] | None = None, out: str | None = None) -> Path:
    """Mean attribution per column (integrated gradients), for the given rows or test rows."""
    from domains.finance import task

    run = _open(run)
    return task.explain(run.dir, _config_of(run), list(inputs or []), Path(out) if out else None)


def monitor(run: Run | str | Path, data: str, out: str | None = None) -> dict[str, Any]:
    """Population stability of the score and each feature of `data` vs the training split."""
    from domains.finance import task

    run = _open(run)
    return task.monitor_data(run.dir, _config_of(run), data, Path(out) if out else None)


def export(
    run: Run | str | Path,
    to: str | Path,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    base_path: str = "/models",
):
    """Write a TF Serving SavedModel of the run (raw columns in; probability, decision out)."""
    from domains.finance import serving
    from shared.export import export_saved_model

    run = _open(run)
    config = _config_of(run)
    spec = serving.serving_spec(run.dir, config)
    result = export_saved_model(
        spec,
        to,
        name or f"{DOMAIN}_{config.task}",
        version=version,
        overwrite=overwrite,
        base_path=base_path,
    )
    return result
