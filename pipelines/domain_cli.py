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

from pipelines.metrics_output import print_metrics
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
    """The click option for one declared `Option` (help text made up if it has none)."""
    help = option.help or f"{option.dest.replace('_', ' ')} ({option.type})"
    kwargs: dict = {"default": option.default, "help": help, "required": option.required}
    if option.type == "flag":
        return click.option(option.flag, option.dest, is_flag=True, help=help)
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


def with_example(text: str, *examples: str) -> str:
    """Help text: a one-line description (and more), then `Example:` lines kept as written."""
    shown = [f"Example: {examples[0]}", *(f"         {e}" for e in examples[1:])]
    return text.rstrip() + "\n\n\b\n" + "\n".join(shown)


def _example_leg(domain: Domain):
    """The first tour leg (a config known to train well), if the domain has one."""
    return domain.tour_legs[0] if domain.tour_legs else None


def _example_task(domain: Domain) -> str:
    leg = _example_leg(domain)
    if leg is not None and leg.task:
        return leg.task
    if leg is not None:
        by_config = {config: task for task, config in domain.task_configs.items()}
        if leg.config in by_config:
            return by_config[leg.config]
    return domain.tasks[0] if domain.tasks else domain.name


def _example_run(domain: Domain) -> str:
    return f"runs/{domain.name}/{_example_task(domain)}/20261130-085747"


def train_example(domain: Domain) -> str:
    """`deepfield <domain> train` with the first tour leg's task, config and data."""
    leg = _example_leg(domain)
    words = ["deepfield", domain.name, "train"]
    if len(domain.tasks) > 1:
        words += ["--task", _example_task(domain)]
    if leg is not None:
        words += ["--config", leg.config]
        if leg.data:
            words += ["--data", leg.data]
    return " ".join(words)


def _example_value(option: Option) -> str:
    if option.choices:
        return str(option.choices[0])
    if option.default is not None and option.type != "flag":
        return str(option.default)
    return {"int": "10", "float": "1.0", "path": "out"}.get(option.type, option.dest.upper())


def verb_example(domain: Domain, verb: Verb) -> str:
    """An example of a domain's own verb: its run, its required options, an input."""
    words = ["deepfield", domain.name, verb.name]
    if verb.needs_run:
        words += ["--run", _example_run(domain)]
    for option in verb.options:
        if option.required:
            words += [option.flag] + ([] if option.type == "flag" else [_example_value(option)])
    if verb.inputs:
        words.append("INPUT")
    return " ".join(words)


def _api(domain: Domain):
    from pipelines.api import api_for

    return api_for(domain.name)


def _declared(domain: Domain, verb: str) -> list:
    return [click_option(o) for o in domain.verb_options.get(verb, ())]


def _config_options(domain, config_help: str, set_help: str) -> list:
    """`--config`, `--data` and `--set`: what a config is built from (train, tune)."""
    return [
        click.option("--config", "config", default=None, help=config_help),
        click.option(
            "--data",
            default=None,
            help="data spec: " + ", ".join(f"{k}:" for k in domain.data_specs),
        ),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=set_help),
    ]


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
        "--run",
        "run_path",
        required=required,
        type=click.Path(path_type=Path),
        help="a run folder (as `train` printed it)",
    )


def _json_option(exports: bool = False):
    where = 'the run\'s path under "run"' + (', an export\'s under "model"' if exports else "")
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help=f"print every metric as one JSON object ({where})",
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
    def train(task, config, data, overrides, run_dir, jit, as_json, **kwargs):
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
            print_metrics(domain.name, run.path, run.metrics, as_json)

    options = [
        _task_option(domain, about_run=False),
        *_config_options(
            domain,
            "named config (" + ", ".join(_api(domain).named_configs()) + ") or YAML path",
            "override any config key (repeatable)",
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
        click.option("--seed", type=int, default=None, help="random seed (data split, weights)"),
        click.option(
            "--precision",
            default=None,
            type=click.Choice(["float32", "mixed_bfloat16", "mixed_float16"]),
            help="Keras dtype policy (mixed_* computes in 16 bits, keeps float32 weights)",
        ),
        click.option(
            "--jit", default=None, type=click.Choice(["on", "off"]), help="XLA compilation"
        ),
        click.option("--deterministic", is_flag=True, default=None, help="TF op determinism"),
        click.option(
            "--track",
            default=None,
            type=click.Choice(["none", "mlflow"]),
            help="also log the finished run to MLflow (MLFLOW_TRACKING_URI, else its local "
            "store); needs pip install -e '.[mlflow]'",
        ),
        _json_option(),
        *_declared(domain, "train"),
    ]
    help = with_example(
        f"Train a {domain.name} model; prints its headline test metrics and the run folder.",
        train_example(domain),
        f"{train_example(domain)} --seed 1 --json",
    )
    return click.command("train", help=help)(with_options(train, options))


def evaluate_command(domain: Domain) -> click.Command:
    exports = type(domain).evaluate_exported is not Domain.evaluate_exported

    def evaluate(run_path, task, data, split, out, as_json, model_path=None, **kwargs):
        declared = _split_kwargs(kwargs, domain, "evaluate")
        metrics = _api(domain).evaluate(
            run_path, data, split, out, model=model_path, task=task, **declared
        )
        if model_path is not None:
            print_metrics(domain.name, model_path, metrics, as_json, label="model")
        else:
            print_metrics(domain.name, run_path, metrics, as_json)

    options = [
        _run_option(required=not exports),
        *([_model_option()] if exports else []),
        _task_option(domain, about_run=True),
        click.option("--data", default=None, help="another source with the run's classes/columns"),
        click.option(
            "--split",
            default="test",
            type=click.Choice(["train", "validation", "test"]),
            show_default=True,
            help="which of the run's data splits to evaluate on",
        ),
        click.option(
            "--out",
            type=click.Path(path_type=Path),
            default=None,
            help="write metrics here instead of the run's metrics.json",
        ),
        _json_option(exports),
        *_declared(domain, "evaluate"),
    ]
    help = with_example(
        "Evaluate a finished run; rewrites its metrics.json (or --out) and prints the "
        "headline metrics.",
        f"deepfield {domain.name} evaluate --run {_example_run(domain)} --out metrics.json",
    )
    return click.command("evaluate", help=help)(with_options(evaluate, options))


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
    help = with_example(
        "Predict inputs (files or JSON); prints one JSON object per input.",
        f"deepfield {domain.name} predict --run {_example_run(domain)} INPUT...",
    )
    return click.command("predict", help=help)(with_options(predict, options))


def explain_command(domain: Domain) -> click.Command:
    def explain(run_path, task, out, inputs):
        click.echo(str(_api(domain).explain(run_path, list(inputs), out, task=task)))

    options = [
        _run_option(),
        _task_option(domain, about_run=True),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write"),
        click.argument("inputs", nargs=-1),
    ]
    help = with_example(
        "Explain predictions (default: held-out examples); prints the plot's path.",
        f"deepfield {domain.name} explain --run {_example_run(domain)} --out explain.png",
    )
    return click.command("explain", help=help)(with_options(explain, options))


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
    help = with_example(
        "Export a finished run for TensorFlow Serving: DIR/NAME/N SavedModel, warmup "
        "requests, DIR/models.config; verified in a fresh process.",
        f"deepfield {domain.name} export --run {_example_run(domain)} --to serving",
    )
    return click.command("export", help=help)(with_options(export, options))


def tune_command(domain: Domain) -> click.Command:
    from pipelines.tune_cli import tune_command as build  # its own module: many options

    return build(domain)


def compress_command(domain: Domain) -> click.Command:
    from pipelines.compress_cli import compress_command as build  # its own module, as tune's

    return build(domain)


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
    help = with_example(verb.help, verb_example(domain, verb))
    return click.command(verb.name, help=help)(with_options(command, options))


BUILDERS = {
    "train": train_command,
    "evaluate": evaluate_command,
    "predict": predict_command,
    "explain": explain_command,
    "export": export_command,
    "tune": tune_command,
    "compress": compress_command,
}


def domain_group(domain: Domain) -> click.Group:
    """The `deepfield <domain>` group with every verb the domain has."""
    help = with_example(
        domain.summary or f"The {domain.name} domain.",
        train_example(domain),
    )
    group = DomainGroup(domain.name, help=help, short_help=domain.summary or None)
    for verb in domain.verbs():
        spec = domain.extra_verb(verb)
        group.add_command(extra_command(domain, spec) if spec else BUILDERS[verb](domain))
    return group
