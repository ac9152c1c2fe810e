"""`deepfield finance ...`: fraud detection and credit scoring commands."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.commands import add_export_command, print_metrics
from shared.errors import UserError

TASK = click.option(
    "--task", default=None, type=click.Choice(["fraud", "credit"]), help="fraud or credit"
)
RUN = click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))


def check_task(task: str | None, run_path: Path) -> None:
    """`--task` on a verb about a finished run must match the run's own task."""
    if task is None:
        return
    from pipelines.run import Run

    trained = Run(run_path).config.get("task")
    if trained != task:
        raise UserError(f"run {run_path} is a {trained} run, not {task}")


@click.group("finance")
def group() -> None:
    """Fraud detection and credit scoring on tables: train, evaluate, predict, explain, export, monitor."""


@group.command("train")
@TASK
@click.option(
    "--config",
    "config",
    default=None,
    help="named config (fraud, credit, fraud_sequence, fraud_autoencoder) or YAML path",
)
@click.option(
    "--data", default=None, help="builtin:transactions, builtin:german-credit or csv:PATH"
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override any config key (repeatable)",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="run folder (default runs/finance/<task>/<time>)",
)
@click.option(
    "--strategy", default=None, type=click.Choice(["auto", "default", "one-device", "mirrored"])
)
@click.option("--seed", type=int, default=None)
@click.option("--deterministic", is_flag=True, default=None, help="TF op determinism")
def finance_train(task, config, data, overrides, run_dir, strategy, seed, deterministic):
    """Train a fraud or credit model; prints the test metrics."""
    from pipelines import finance as api

    run = api.train(
        config=config,
        data=data,
        overrides=overrides,
        run_dir=run_dir,
        task=task,
        strategy=strategy,
        seed=seed,
        deterministic=deterministic,
    )
    print_metrics(run.path, run.metrics)


@group.command("evaluate")
@TASK
@RUN
@click.option(
    "--data", default=None, help="csv:PATH with the run's columns and target (scores every row)"
)
@click.option("--split", default="test", type=click.Choice(["train", "validation", "test"]))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="write metrics here instead of the run's metrics.json",
)
def finance_evaluate(task, run_path, data, split, out):
    """Evaluate a finished run; rewrites its metrics.json (or --out)."""
    check_task(task, run_path)
    from pipelines import finance as api

    metrics = api.evaluate(run_path, data=data, split=split, out=str(out) if out else None)
    print_metrics(run_path, metrics)


@group.command("predict")
@TASK
@RUN
@click.argument("inputs", nargs=-1, required=True)
def finance_predict(task, run_path, inputs):
    """Score CSV files and/or JSON rows; one JSON object per row."""
    check_task(task, run_path)
    from pipelines import finance as api

    for result in api.predict(run_path, list(inputs)):
        click.echo(json.dumps(result))


@group.command("explain")
@TASK
@RUN
@click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write")
@click.argument("inputs", nargs=-1)
def finance_explain(task, run_path, out, inputs):
    """Mean attribution per column (default: the run's test rows); prints the plot's path."""
    check_task(task, run_path)
    from pipelines import finance as api

    click.echo(str(api.explain(run_path, list(inputs), out=str(out) if out else None)))


@group.command("monitor")
@TASK
@RUN
@click.option("--data", required=True, help="csv:PATH of new rows (target not needed)")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON report (default RUN/monitor.json)",
)
def finance_monitor(task, run_path, data, out):
    """Population stability index of the score and each feature vs the training split."""
    check_task(task, run_path)
    from pipelines import finance as api

    report = api.monitor(run_path, data, out=str(out) if out else None)
    click.echo(f"score PSI {report['score_psi']:.4f} ({report['score_band']})")
    for name, value in report["features"].items():
        click.echo(f"  {name:<28} {value['psi']:.4f}  {value['band']}")
    click.echo(
        json.dumps(
            {"score_psi": report["score_psi"], "shifted": report["shifted"], "plot": report["plot"]}
        )
    )


add_export_command(group, "finance")
