"""`deepfield <domain> compress`: the command and its options (the compression itself is
pipelines.compress)."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.domain_cli import (
    _api,
    _example_run,
    _json_option,
    _run_option,
    _task_option,
    with_example,
    with_options,
)
from pipelines.metrics_output import print_metrics
from shared.domain import Domain


def compress_command(domain: Domain) -> click.Command:
    from shared.compression import QUANTIZE_MODES

    def compress(run_path, task, prune, quantize, distill_from, student, overrides, **kwargs):
        from pipelines.compress_report import table

        run = _api(domain).compress(
            run_path,
            prune=prune,
            quantize=quantize,
            distill_from=distill_from,
            student=student,
            overrides=overrides,
            task=task,
            **{k: v for k, v in kwargs.items() if v is not None and k != "as_json"},
        )
        if kwargs.get("as_json"):
            print_metrics(domain.name, run.path, run.metrics, True)
        else:
            click.echo(table(run))

    options = [
        _run_option(),
        _task_option(domain, about_run=True),
        click.option(
            "--prune",
            type=float,
            default=None,
            help="zero this fraction of every conv/dense kernel by magnitude while "
            "fine-tuning (polynomial schedule), e.g. 0.5",
        ),
        click.option(
            "--quantize",
            type=click.Choice(list(QUANTIZE_MODES)),
            default=None,
            help="Keras quantization of Dense/EinsumDense/Embedding weights",
        ),
        click.option(
            "--distill-from",
            type=click.Path(path_type=Path),
            default=None,
            help="teacher run: train a student on its softened outputs and the labels",
        ),
        click.option(
            "--student",
            default=None,
            help="student zoo model (default: the run's model at a quarter of its width)",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="change a key of the run's config for the new run (model.* for a student)",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=1),
            default=None,
            help="fine-tuning epochs (pruning: default a quarter of the run's, at least 2; "
            "distillation: the run's)",
        ),
        click.option(
            "--alpha",
            type=float,
            default=None,
            help="distillation: weight of the hard-label loss (0.1)",
        ),
        click.option(
            "--temperature", type=float, default=None, help="distillation: softmax temperature (4)"
        ),
        click.option(
            "--run-dir",
            type=click.Path(path_type=Path),
            default=None,
            help=f"new run folder (default runs/{domain.name}/<task>/compress-<time>)",
        ),
        _json_option(),
    ]
    help = with_example(
        f"Compress a finished {domain.name} run into a new run (pruning, quantization, "
        "distillation); prints original vs compressed size, parameters, latency and metric.",
        f"deepfield {domain.name} compress --run {_example_run(domain)} --prune 0.5",
    )
    return click.command("compress", help=help)(with_options(compress, options))
