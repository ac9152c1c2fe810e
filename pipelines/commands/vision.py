"""`deepfield vision ...`: image classification commands."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.commands import add_export_command, common_train_options, print_metrics
from shared.errors import UserError


@click.group("vision")
def group() -> None:
    """Image classification: train, evaluate, predict, explain, export."""


@group.command("train")
@common_train_options
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    default=None,
    help="transfer learning: start from this run's backbone",
)
def vision_train(
    task,
    config,
    data,
    overrides,
    run_dir,
    strategy,
    devices,
    local_workers,
    seed,
    precision,
    jit,
    deterministic,
    init_from,
):
    """Train an image classifier; prints the test metrics."""
    from pipelines import vision as api

    if task not in (None, "classify", "generate"):
        raise UserError(f"vision has two tasks, classify and generate (got --task {task})")
    run = api.train(
        config=config,
        task=task,
        data=data,
        overrides=overrides,
        run_dir=run_dir,
        init_from=init_from,
        strategy=strategy,
        devices=devices,
        local_workers=local_workers,
        seed=seed,
        precision=precision,
        jit=None if jit is None else jit == "on",
        deterministic=deterministic,
    )
    if run is not None:
        print_metrics(run.path, run.metrics)


def _run_or_model(func):
    """`--run RUN` or `--model EXPORT` (checked by `_one_of` when the command runs)."""
    func = click.option(
        "--model",
        "model_path",
        type=click.Path(path_type=Path),
        default=None,
        help="an exported SavedModel (DIR/NAME or DIR/NAME/N) instead of --run",
    )(func)
    return click.option("--run", "run_path", type=click.Path(path_type=Path), default=None)(func)


@group.command("evaluate")
@_run_or_model
@click.option("--data", default=None, help="another source with the same classes")
@click.option("--split", default="test", type=click.Choice(["train", "validation", "test"]))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="write metrics here instead of the run's metrics.json",
)
def vision_evaluate(run_path, model_path, data, split, out):
    """Evaluate a finished run (rewrites its metrics.json, or --out) or an export."""
    from pipelines import vision as api

    _one_of(run_path, model_path)
    if model_path is not None:
        metrics = api.evaluate_exported(
            model_path, data=data, split=split, out=str(out) if out else None
        )
        print_metrics(model_path, metrics)
        return
    metrics = api.evaluate(run_path, data=data, split=split, out=str(out) if out else None)
    print_metrics(run_path, metrics)


@group.command("predict")
@_run_or_model
@click.argument("inputs", nargs=-1, required=True)
def vision_predict(run_path, model_path, inputs):
    """Predict image files (or folders); one JSON object per input."""
    from pipelines import vision as api

    _one_of(run_path, model_path)
    if model_path is not None:
        results = api.predict_exported(model_path, list(inputs))
    else:
        results = api.predict(run_path, list(inputs))
    for result in results:
        click.echo(json.dumps(result))


def _one_of(run_path, model_path) -> None:
    if (run_path is None) == (model_path is None):
        raise UserError("give exactly one of --run RUN or --model EXPORT")


@group.command("explain")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write")
@click.argument("inputs", nargs=-1)
def vision_explain(run_path, out, inputs):
    """Grad-CAM overlays for images (default: test examples of the run's data)."""
    from pipelines import vision as api

    path = api.explain(run_path, list(inputs), out=str(out) if out else None)
    click.echo(str(path))


add_export_command(group, "vision", tflite=True)
