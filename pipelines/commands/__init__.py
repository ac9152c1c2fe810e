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
