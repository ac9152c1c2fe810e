"""The `deepfield` command line: a thin layer over the Python API in `pipelines`.

Exit codes: 0 success; 2 bad usage or bad input (one `error:` line); 1 an unexpected
failure (its traceback goes to the run's log.txt when there is a run, else stderr).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

import click

from shared.errors import UserError

DOMAINS = ("vision",)


def _common_train_options(func):
    options = [
        click.option("--task", default=None, help="the domain's task (vision: classify)"),
        click.option("--config", "config", default=None, help="named config or YAML path"),
        click.option("--data", default=None, help="data spec, e.g. builtin:digits, folder:PATH"),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="override any config key (repeatable)",
        ),
        click.option(
            "--run-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="run folder (default runs/<domain>/<task>/<time>); rerun to resume",
        ),
        click.option(
            "--strategy",
            default=None,
            type=click.Choice(["auto", "default", "one-device", "mirrored", "multi-worker", "tpu"]),
        ),
        click.option("--devices", type=int, default=None, help="mirrored: number of replicas"),
        click.option(
            "--local-workers",
            type=int,
            default=None,
            help="multi-worker: start N workers on localhost",
        ),
        click.option("--seed", type=int, default=None),
        click.option(
            "--precision",
            default=None,
            type=click.Choice(["float32", "mixed_bfloat16", "mixed_float16"]),
        ),
        click.option(
            "--jit", default=None, type=click.Choice(["on", "off"]), help="XLA compilation"
        ),
        click.option("--deterministic", is_flag=True, default=None, help="TF op determinism"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def cli(verbose: bool) -> None:
    """Deepfield: applied deep learning on Keras 3 and TensorFlow."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        # Keras prints each epoch on the console; log.txt gets the same as plain lines.
        handler.addFilter(lambda record: record.name != "deepfield.epochs")
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# === vision ===
@cli.group()
def vision() -> None:
    """Image classification: train, evaluate, predict, explain."""


@vision.command("train")
@_common_train_options
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

    if task not in (None, "classify"):
        raise UserError(f"vision has one task, classify (got --task {task})")
    run = api.train(
        config=config,
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
        _print_metrics(run.path, run.metrics)


@vision.command("evaluate")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.option("--data", default=None, help="another source with the same classes")
@click.option("--split", default="test", type=click.Choice(["train", "validation", "test"]))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="write metrics here instead of the run's metrics.json",
)
def vision_evaluate(run_path, data, split, out):
    """Evaluate a finished run; rewrites its metrics.json (or --out)."""
    from pipelines import vision as api

    metrics = api.evaluate(run_path, data=data, split=split, out=str(out) if out else None)
    _print_metrics(run_path, metrics)


@vision.command("predict")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
def vision_predict(run_path, inputs):
    """Predict image files (or folders); one JSON object per input."""
    from pipelines import vision as api

    for result in api.predict(run_path, list(inputs)):
        click.echo(json.dumps(result))


@vision.command("explain")
@click.option("--run", "run_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write")
@click.argument("inputs", nargs=-1)
def vision_explain(run_path, out, inputs):
    """Grad-CAM overlays for images (default: test examples of the run's data)."""
    from pipelines import vision as api

    path = api.explain(run_path, list(inputs), out=str(out) if out else None)
    click.echo(str(path))


# === tour ===
@cli.command()
@click.option("--quick", is_flag=True, help="a few epochs per leg, for a smoke test")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tour"))
def tour(quick, out):
    """The main job: every domain on embedded data, with a report."""
    from pipelines.tour import run_tour

    run_tour(out, quick=quick)


# === zoo ===
@cli.group()
def zoo() -> None:
    """The architecture zoo."""


@zoo.command("list")
def zoo_list():
    """Every model with its weight layers and parameters at its default input."""
    from pipelines.zoo import list_models

    click.echo(list_models())


@zoo.command("show")
@click.argument("name")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="input_shape, num_classes or a model option",
)
def zoo_show(name, overrides):
    """One model's summary."""
    from pipelines.zoo import show_model

    click.echo(show_model(name, list(overrides)))


def _print_metrics(run_path, metrics) -> None:
    shown = "  ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    click.echo(f"{run_path}: {shown}")


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="deepfield", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        return 2
    except UserError as err:
        click.echo(f"error: {err}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("error: interrupted; rerun the same command to resume", err=True)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        traceback.print_exc(file=sys.stderr)
        click.echo(f"error: unexpected failure: {type(err).__name__}: {err}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
