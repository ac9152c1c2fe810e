"""`deepfield <domain> tune`: the command and its options (the search is pipelines.tune,
parallel workers pipelines.tune_workers, saved presets pipelines.presets)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.domain_cli import (
    _api,
    _config_options,
    _task_option,
    train_example,
    with_example,
    with_options,
)
from shared.domain import Domain


def tune_command(domain: Domain) -> click.Command:
    from pipelines.tune import ALGORITHMS, SIZE_OBJECTIVES

    def tune(trials, save_preset, trial, force, as_json, **options):
        from pipelines import presets

        if (trial is not None or force) and save_preset is None:
            raise click.UsageError("--trial and --force go with --save-preset NAME")
        if trials is None:  # save a finished search's trial
            if save_preset is None:
                raise click.UsageError(
                    "--trials is required (or --save-preset NAME --run-dir DIR to save a "
                    "finished search's trial as a named config)"
                )
            if options["run_dir"] is None:
                raise click.UsageError(
                    "--save-preset without --trials needs the search's --run-dir"
                )
            path = presets.save_preset(options["run_dir"], save_preset, trial, force, domain.name)
            _saved(domain, save_preset, path, trial)
            return
        if save_preset is not None:
            if options["worker_id"] not in (None, "chief"):
                raise click.UsageError("--save-preset goes on the chief's command, not a worker's")
            presets.preset_path(domain.name, save_preset, force)  # refused before training
        result = _api(domain).tune(trials=trials, **options)
        if result is None:  # a worker: its chief writes search.json
            return
        click.echo(json.dumps(result.search, default=str) if as_json else result.table())
        if save_preset is not None:
            path = result.save_preset(save_preset, trial, force)
            _saved(domain, save_preset, path, trial, err=as_json)

    options = [
        _task_option(domain, about_run=False),
        *_config_options(
            domain,
            "the base config every trial starts from (named or YAML path)",
            "fix a key of the base config (repeatable)",
        ),
        click.option(
            "--space",
            type=click.Path(path_type=Path),
            default=None,
            help="YAML of keys to search, e.g. 'train.learning_rate: {type: float, min: "
            "1e-4, max: 1e-2, sampling: log}' (default: learning rate and model options)",
        ),
        click.option(
            "--trials",
            type=click.IntRange(min=1),
            default=None,
            help="trials to train (required, except to --save-preset a finished search)",
        ),
        click.option(
            "--algorithm",
            default="random",
            type=click.Choice(list(ALGORITHMS)),
            show_default=True,
            help="KerasTuner's random/bayesian/hyperband oracle, or regularized evolution",
        ),
        click.option(
            "--max-time",
            default=None,
            metavar="DURATION",
            help="start no trial after this long (30m, 2h, 90s)",
        ),
        click.option(
            "--run-dir",
            type=click.Path(path_type=Path),
            default=None,
            help=f"search folder (default runs/{domain.name}/<task>/tune-<time>); rerun to resume",
        ),
        click.option(
            "--objective",
            default=None,
            metavar="METRIC",
            help="the metric to optimise: a val_* column of history.csv (the validation "
            "split) or a metrics.json key; default: val_loss (rl: its headline metric, as "
            "it has no validation split); loss-like metrics are minimised",
        ),
        click.option(
            "--size-objective",
            default="parameters",
            type=click.Choice(list(SIZE_OBJECTIVES)),
            show_default=True,
            help="the Pareto front's second objective: the model's parameters, or its "
            "median batch-1 latency (ms) measured after training",
        ),
        click.option("--seed", type=int, default=None, help="seed of the trials and the oracle"),
        click.option(
            "--cv",
            type=click.IntRange(min=2),
            default=None,
            metavar="K",
            help="score each trial by K-fold cross-validation over the rows outside the "
            "test split (K runs per trial, mean of their val_* objective), then refit the "
            "best on the usual split",
        ),
        click.option(
            "--population",
            type=click.IntRange(min=2),
            default=10,
            show_default=True,
            help="evolution: population size P (the first P trials are random)",
        ),
        click.option(
            "--sample-size",
            type=click.IntRange(min=1),
            default=3,
            show_default=True,
            help="evolution: members drawn per tournament S",
        ),
        click.option(
            "--workers",
            type=int,
            default=1,
            show_default=True,
            help="trials trained at once, each worker a process on this machine with its "
            "share of the cores (KerasTuner's distributed tuning)",
        ),
        click.option(
            "--worker-id",
            default=None,
            metavar="ID",
            help="several machines: 'chief' serves the oracle at --oracle-address; any other "
            "id is a worker of that chief (KERASTUNER_TUNER_ID)",
        ),
        click.option(
            "--oracle-address",
            default=None,
            metavar="HOST:PORT",
            help="several machines: where the chief listens / workers connect",
        ),
        click.option(
            "--save-preset",
            default=None,
            metavar="NAME",
            help="save the best trial's config (or --trial's) as named config NAME, for "
            "--config NAME; without --trials, from the finished search in --run-dir",
        ),
        click.option("--trial", default=None, metavar="ID", help="--save-preset: this trial"),
        click.option("--force", is_flag=True, help="--save-preset: replace an existing preset"),
        click.option("--json", "as_json", is_flag=True, help="print search.json instead"),
    ]
    example = train_example(domain).replace(" train", " tune", 1)
    help = with_example(
        f"Search {domain.name} config values with KerasTuner: each trial is a train run "
        "under RUN_DIR/trials/; writes RUN_DIR/search.json and prints a table.",
        f"{example} --trials 10 --algorithm evolution --workers 2",
        f"deepfield {domain.name} tune --run-dir RUN_DIR --save-preset my_{domain.name}",
    )
    return click.command("tune", help=help)(with_options(tune, options))


def _saved(domain: Domain, name: str, path: Path, trial: str | None, err: bool = False) -> None:
    which = f"trial {trial}" if trial is not None else "the best trial"
    click.echo(
        f"saved {which} as {domain.name} config {name!r}: {path}\n"
        f"train it: deepfield {domain.name} train --config {name}",
        err=err,
    )
