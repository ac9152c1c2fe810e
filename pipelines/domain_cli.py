"""`deepfield <domain> <verb>`: one click group per registered domain, generated.

Every domain gets the same verbs with the same options (`train` with the common flags,
`evaluate`, `predict`, `explain`, `export`), the options it declares for them, and its
own verbs. Each command calls `pipelines.<domain>` (the Python API), so the CLI and
notebooks do the same thing. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.domain import STRATEGIES, Domain, Option, Verb

STRATEGY_HELP = "tf.distribute strategy (auto picks TPU, several GPUs, one GPU or CPU)"


class NamingGroup(click.Group):
    """A group whose unknown command is an error that names the commands it has."""

    def unknown(self, name: str) -> str:
        return f"unknown command {name!r}; commands: {', '.join(self.commands)}"

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and name not in self.commands:
            raise click.UsageError(self.unknown(name))
        return super().resolve_command(ctx, args)


class DomainGroup(NamingGroup):
    """A domain's group: an unknown verb is an error that names the verbs it has."""

    def unknown(self, name: str) -> str:
        return f"{self.name} has no verb {name!r}; its verbs: {', '.join(self.commands)}"

    def list_commands(self, ctx):
        return list(self.commands)  # in the domain's order, not sorted


def click_option(option: Option):
    """The click option for one declared `Option`."""
    kwargs: dict = {"default": option.default, "help": option.help, "required": option.required}
    if option.type == "flag":
        return click.option(option.flag, option.dest, is_flag=True, help=option.help)
    if option.type == "choice":
        kwargs.update(type=click.Choice(list(option.choices)), show_default=True)
    elif option.type == "int":
        kwargs["type"] = click.IntRange(min=option.min) if option.min is not None else int
    elif option.type == "float":
        kwargs["type"] = float
    elif option.type == "path":
        kwargs["type"] = click.Path(path_type=Path)
    return click.option(option.flag, option.dest, **kwargs)


def with_options(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def print_metrics(run_path, metrics) -> None:
    shown = "  ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    click.echo(f"{run_path}: {shown}")


def _api(domain: Domain):
    from pipelines.api import api_for

    return api_for(domain.name)


def _declared(domain: Domain, verb: str) -> list:
    return [click_option(o) for o in domain.verb_options.get(verb, ())]


def _task_option(domain: Domain, about_run: bool):
    help = "the run's task (checked)" if about_run else "the task to train"
    return click.option(
        "--task",
        default=None,
        type=click.Choice(list(domain.tasks)),
        help=f"{help}: " + ", ".join(domain.tasks),
    )


def _run_option(required: bool = True):
    return click.option(
        "--run", "run_path", required=required, type=click.Path(path_type=Path), help="a run folder"
    )


def _model_option():
    return click.option(
        "--model",
        "model_path",
        type=click.Path(path_type=Path),
        default=None,
        help="an exported SavedModel (DIR/NAME or DIR/NAME/N) instead of --run",
    )


def _split_kwargs(kwargs: dict, domain: Domain, verb: str) -> dict:
    """The declared options' values (given ones only) out of a command's kwargs."""
    names = [o.dest for o in domain.verb_options.get(verb, ())]
    return {n: kwargs.pop(n) for n in names if kwargs.get(n) is not None}


# === The common verbs ===
def train_command(domain: Domain) -> click.Command:
    def train(task, config, data, overrides, run_dir, jit, **kwargs):
        declared = _split_kwargs(kwargs, domain, "train")
        given = {k: v for k, v in kwargs.items() if v is not None}
        run = _api(domain).train(
            config=config,
            data=data,
            overrides=overrides,
            run_dir=run_dir,
            task=task,
            jit=None if jit is None else jit == "on",
            **given,
            **declared,
        )
        if run is not None:
            print_metrics(run.path, run.metrics)

    options = [
        _task_option(domain, about_run=False),
        click.option(
            "--config",
            "config",
            default=None,
            help="named config (" + ", ".join(_api(domain).named_configs()) + ") or YAML path",
        ),
        click.option(
            "--data",
            default=None,
            help="data spec: " + ", ".join(f"{k}:" for k in domain.data_specs),
        ),
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
            help=f"run folder (default runs/{domain.name}/<task>/<time>); rerun to resume",
        ),
        click.option("--strategy", default=None, type=click.Choice(STRATEGIES), help=STRATEGY_HELP),
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
        *_declared(domain, "train"),
    ]
    train.__doc__ = f"Train a {domain.name} model; prints the test metrics."
    return click.command("train")(with_options(train, options))


def evaluate_command(domain: Domain) -> click.Command:
    exports = type(domain).evaluate_exported is not Domain.evaluate_exported

    def evaluate(run_path, task, data, split, out, model_path=None, **kwargs):
        declared = _split_kwargs(kwargs, domain, "evaluate")
        metrics = _api(domain).evaluate(
            run_path, data, split, out, model=model_path, task=task, **declared
        )
        print_metrics(model_path or run_path, metrics)

    options = [
        _run_option(required=not exports),
        *([_model_option()] if exports else []),
        _task_option(domain, about_run=True),
        click.option("--data", default=None, help="another source with the run's classes/columns"),
        click.option("--split", default="test", type=click.Choice(["train", "validation", "test"])),
        click.option(
            "--out",
            type=click.Path(path_type=Path),
            default=None,
            help="write metrics here instead of the run's metrics.json",
        ),
        *_declared(domain, "evaluate"),
    ]
    evaluate.__doc__ = "Evaluate a finished run; rewrites its metrics.json (or --out)."
    return click.command("evaluate")(with_options(evaluate, options))


def predict_command(domain: Domain) -> click.Command:
    exports = type(domain).predict_exported is not Domain.predict_exported

    def predict(run_path, task, inputs, model_path=None, **kwargs):
        declared = _split_kwargs(kwargs, domain, "predict")
        results = _api(domain).predict(
            run_path, list(inputs), model=model_path, task=task, **declared
        )
        for result in results:
            click.echo(json.dumps(result))

    options = [
        _run_option(required=not exports),
        *([_model_option()] if exports else []),
        _task_option(domain, about_run=True),
        *_declared(domain, "predict"),
        click.argument("inputs", nargs=-1, required=True),
    ]
    predict.__doc__ = "Predict inputs (files or JSON); one JSON object per input."
    return click.command("predict")(with_options(predict, options))


def explain_command(domain: Domain) -> click.Command:
    def explain(run_path, task, out, inputs):
        click.echo(str(_api(domain).explain(run_path, list(inputs), out, task=task)))

    options = [
        _run_option(),
        _task_option(domain, about_run=True),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write"),
        click.argument("inputs", nargs=-1),
    ]
    explain.__doc__ = "Explain predictions (default: held-out examples); prints the plot's path."
    return click.command("explain")(with_options(explain, options))


def export_command(domain: Domain) -> click.Command:
    def export(run_path, task, to, name, version, overwrite, base_path, **kwargs):
        declared = _split_kwargs(kwargs, domain, "export")
        result = _api(domain).export(
            run_path,
            to=to,
            name=name,
            version=version,
            overwrite=overwrite,
            base_path=base_path,
            task=task,
            **declared,
        )
        click.echo(json.dumps(result if isinstance(result, dict) else result.summary()))

    options = [
        _run_option(),
        _task_option(domain, about_run=True),
        click.option(
            "--to", required=True, type=click.Path(path_type=Path), help="export root folder"
        ),
        click.option("--name", default=None, help=f"model name (default {domain.name}_<task>)"),
        click.option("--version", type=int, default=None, help="default: the next integer"),
        click.option("--overwrite", is_flag=True, help="replace an existing version"),
        click.option(
            "--base-path",
            default="/models",
            show_default=True,
            help="where the server sees --to (models.config base paths)",
        ),
        *_declared(domain, "export"),
    ]
    export.__doc__ = (
        "Export a finished run for TensorFlow Serving: DIR/NAME/N SavedModel, warmup "
        "requests, DIR/models.config; verified in a fresh process."
    )
    return click.command("export")(with_options(export, options))


# === A domain's own verbs ===
def extra_command(domain: Domain, verb: Verb) -> click.Command:
    def command(run_path=None, task=None, inputs=(), **kwargs):
        options = {k: v for k, v in kwargs.items() if v is not None}
        function = _api(domain).verb(verb.name)
        args = [run_path] if verb.needs_run else []
        if verb.inputs:
            args.append(list(inputs))
        if verb.needs_run and task is not None:
            options["task"] = task
        result = function(*args, **options)
        shown = domain.format_result(verb.name, result)
        click.echo(shown if shown is not None else json.dumps(result, default=str))

    options = [click_option(o) for o in verb.options]
    if verb.needs_run:
        options = [_run_option(), _task_option(domain, about_run=True), *options]
    if verb.inputs:
        options.append(click.argument("inputs", nargs=-1))
    command.__doc__ = verb.help
    return click.command(verb.name)(with_options(command, options))


BUILDERS = {
    "train": train_command,
    "evaluate": evaluate_command,
    "predict": predict_command,
    "explain": explain_command,
    "export": export_command,
}


def domain_group(domain: Domain) -> click.Group:
    """The `deepfield <domain>` group with every verb the domain has."""
    group = DomainGroup(domain.name, help=domain.summary)
    for verb in domain.verbs():
        spec = domain.extra_verb(verb)
        group.add_command(extra_command(domain, spec) if spec else BUILDERS[verb](domain))
    return group
