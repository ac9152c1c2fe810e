"""Domain command groups for the `deepfield` CLI, one module per domain.

Each module defines a click group named `group`; `pipelines.cli` adds every module's
group found in this package, so a new domain adds a file here and touches nothing else.
Shared option sets and printing helpers live here.
"""

from __future__ import annotations

from pathlib import Path

import click


def common_train_options(func):
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


def print_metrics(run_path, metrics) -> None:
    shown = "  ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    click.echo(f"{run_path}: {shown}")


def add_export_command(group: click.Group, domain: str, tflite: bool = False) -> None:
    """Add `export --run RUN --to DIR [--name] [--version] [--overwrite]` to `group`.

    It calls `pipelines.<domain>.export(run, to=, name=, version=, overwrite=, ...)` and
    prints the result as one JSON object. With `tflite`, `--format` and `--quantize`
    are offered too and passed through.
    """
    import importlib
    import json

    options = [
        click.option("--run", "run_path", required=True, type=click.Path(path_type=Path)),
        click.option(
            "--to", required=True, type=click.Path(path_type=Path), help="export root folder"
        ),
        click.option("--name", default=None, help=f"model name (default {domain}_<task>)"),
        click.option("--version", type=int, default=None, help="default: the next integer"),
        click.option("--overwrite", is_flag=True, help="replace an existing version"),
        click.option(
            "--base-path",
            default="/models",
            show_default=True,
            help="where the server sees --to (models.config base paths)",
        ),
    ]
    if tflite:
        options += [
            click.option(
                "--format",
                "fmt",
                default="saved_model",
                type=click.Choice(["saved_model", "tflite"]),
                show_default=True,
            ),
            click.option(
                "--quantize",
                default="none",
                type=click.Choice(["none", "dynamic", "float16", "int8"]),
                show_default=True,
                help="TFLite post-training quantization",
            ),
        ]

    def export(run_path, to, name, version, overwrite, base_path, fmt=None, quantize=None):
        api = importlib.import_module(f"pipelines.{domain}")
        extra = {"format": fmt, "quantize": quantize} if tflite else {}
        if fmt != "tflite":
            extra["base_path"] = base_path
        result = api.export(
            run_path, to=to, name=name, version=version, overwrite=overwrite, **extra
        )
        click.echo(json.dumps(result if isinstance(result, dict) else result.summary()))

    export.__doc__ = (
        "Export a finished run for TensorFlow Serving: DIR/NAME/N SavedModel, warmup "
        "requests, DIR/models.config; verified in a fresh process."
    )
    for option in reversed(options):
        export = option(export)
    group.command("export")(export)
