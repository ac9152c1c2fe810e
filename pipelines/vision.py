"""Vision from Python: the functions the CLI and notebooks share.

from pipelines import vision
run = vision.train(config="digits", data="builtin:digits")
run.metrics["accuracy"], run.plots, run.predict(["digit.png"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.vision.config import VisionConfig
from pipelines import configs, runner
from pipelines.run import Run
from shared.errors import UserError

DOMAIN = "vision"


def resolve_config(
    config: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **shortcuts: Any,
) -> VisionConfig:
    """The validated config a `train` would use (named config, `--set`s, flags)."""
    return configs.resolve(DOMAIN, VisionConfig, config, overrides, **shortcuts)


def train(
    config: str | None = "default",
    data: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | Path | None = None,
    *,
    task: str | None = None,
    init_from: str | Path | None = None,
    strategy: str | None = None,
    devices: int | None = None,
    local_workers: int | None = None,
    seed: int | None = None,
    precision: str | None = None,
    jit: bool | None = None,
    deterministic: bool | None = None,
    epochs: int | None = None,
) -> Run | None:
    """Train an image classifier (task "classify") or generator ("generate"); returns the Run.

    (None only inside a multi-worker worker other than the chief, which writes no run.)
    """
    resolved = resolve_config(
        config,
        overrides,
        **{
            "task": task,
            "data.source": data,
            "transfer.init_from": str(init_from) if init_from else None,
            "runtime.strategy": strategy,
            "runtime.devices": devices,
            "runtime.local_workers": local_workers,
            "runtime.seed": seed,
            "runtime.deterministic": deterministic,
            "train.precision": precision,
            "train.jit": jit,
            "train.epochs": epochs,
        },
    )
    path = Path(run_dir) if run_dir else runner.default_run_dir(DOMAIN, resolved.task)
    from domains.vision import task  # TensorFlow loads only once the config is known good

    finished = runner.execute(DOMAIN, resolved, path, task.train)
    return Run(finished.path) if finished else None


def _config_of(run: Run) -> VisionConfig:
    return VisionConfig.model_validate(run.config)


def evaluate(
    run: Run | str | Path, data: str | None = None, split: str = "test", out: str | None = None
) -> dict[str, Any]:
    """Metrics of a finished run on a split of its data (or of another source)."""
    from domains.vision import task

    run = run if isinstance(run, Run) else Run(run)
    return task.evaluate(
        run.dir, _config_of(run), source=data, split=split, out=Path(out) if out else None
    )


def predict(run: Run | str | Path, inputs: list[str]) -> list[dict[str, Any]]:
    """Class predictions for image files (or folders of them)."""
    from domains.vision import task

    run = run if isinstance(run, Run) else Run(run)
    return task.predict(run.dir, list(inputs))


def explain(run: Run | str | Path, inputs: list[str] | None = None, out: str | None = None) -> Path:
    """Grad-CAM overlays for image files, or for test examples when none are given."""
    from domains.vision import task

    run = run if isinstance(run, Run) else Run(run)
    return task.explain(run.dir, _config_of(run), list(inputs or []), Path(out) if out else None)


def export(
    run: Run | str | Path,
    to: str | Path,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    *,
    format: str = "saved_model",
    quantize: str = "none",
    base_path: str = "/models",
):
    """Export a finished run for TF Serving (`to/NAME/N`) or as `to/NAME.tflite`.

    SavedModel: returns the ExportResult (path, version, signatures, fresh-process
    verification). TFLite: returns the report dict (size, accuracy beside the float
    model on the test split).
    """
    from domains.vision import export as vision_export

    run = run if isinstance(run, Run) else Run(run)
    name = name or f"{DOMAIN}_{run.config.get('task', 'classify')}"
    if format == "tflite":
        return vision_export.export_tflite(
            run.dir, _config_of(run), Path(to), name, quantize, overwrite
        )
    if format != "saved_model":
        raise UserError(f"unknown export format {format!r}; use saved_model or tflite")
    if quantize != "none":
        raise UserError("--quantize applies to --format tflite only")
    return vision_export.export(
        run.dir, _config_of(run), Path(to), name, version, overwrite, base_path=base_path
    )


def predict_exported(model: str | Path, inputs: list[str]) -> list[dict[str, Any]]:
    """Predictions of an exported SavedModel (`DIR/NAME` or `DIR/NAME/N`) on image files."""
    from domains.vision import export as vision_export

    return vision_export.predict_exported(model, list(inputs))


def evaluate_exported(
    model: str | Path, data: str | None = None, split: str = "test", out: str | None = None
) -> dict[str, Any]:
    """Metrics of an exported SavedModel on its run's split (or another source's)."""
    from domains.vision import export as vision_export

    return vision_export.evaluate_exported(model, data, split, Path(out) if out else None)
