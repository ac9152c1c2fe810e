"""`deepfield <domain> tune`: a KerasTuner search whose trials are ordinary `train` runs.

A trial is the domain's `train` (the same `runner.execute` the CLI uses, in-process)
of the base config (`--config`, `--set`, `--data`) with the trial's sampled values set,
written as a normal run directory under `<run-dir>/trials/<trial_id>`, so `runs list`,
TensorBoard and resume work on trials. It is scored by `objective` from the trial's
metrics.json (`val_*` objectives from the last row of its history.csv instead).

```
<run-dir>/tune.yaml      the search's settings (domain, task, algorithm, objective, space, base config)
<run-dir>/search.json    every trial (id, values, status, objective, run, worker, wall time,
                         parameters, latency), the best and the Pareto front
<run-dir>/pareto.png     the objective against the second objective (size or latency)
<run-dir>/trials/<id>/   one run directory per trial (--cv K: <id>/fold-<k>/, one per fold)
<run-dir>/refit/<id>/    --cv K: the best trial's values trained once on the usual split
<run-dir>/tuner/         KerasTuner's project (oracle state, trial records): resume reads it
<run-dir>/workers/       --workers N: what each worker runs, and its log
```

`--cv K` scores a trial by K-fold cross-validation instead: K runs, each validating on
one fold of the train and validation rows (shared.data.splits.cross_validation_fold),
the test split untouched, the objective their mean. A validation split of a few hundred
rows picks among near-equal trials by noise; K folds validate on every row outside the
test split. The best trial is then refit: trained once on the usual split, so the
search ends with one run to evaluate, export and serve (scikit-learn's GridSearchCV
refits the same way).

Rerunning the same command resumes: finished trials are kept, the trial a kill cut short
resumes from its checkpoints, and a larger `--trials` adds trials. A trial that crashes
is recorded as failed and the search goes on. Trials run in-process because a
TensorFlow start-up costs more than a tiny trial (measured: about 5 s per trial);
`keras.backend.clear_session()` runs between trials. `--workers N` runs N trials at once,
each worker a process of its own (pipelines.tune_workers); pipelines.tune_tuner holds
the KerasTuner side (oracle, tuner, search.json).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines import runner, tune_workers
from pipelines.runs import _leg_headlines, lower_is_better
from pipelines.tune_results import SEARCH, SIZE_COLUMNS, TuneResult, result_of
from shared.config import get_key, set_key, to_plain, validate
from shared.errors import UserError
from shared.run_dir import write_atomic
from shared.search.default_space import default_space
from shared.search.space import Space, read_space

if TYPE_CHECKING:
    from pipelines.api import DomainAPI

LOG = logging.getLogger("deepfield")
ALGORITHMS = ("random", "bayesian", "hyperband", "evolution")
BUDGET_KEYS = ("train.epochs", "agent.total_steps")  # what hyperband varies, first found
STEP_UNITS = 9  # hyperband's budget for step-counted training: ninths of total_steps
SETTINGS = "tune.yaml"
SIZE_OBJECTIVES = tuple(SIZE_COLUMNS)  # the second objective: parameters or latency


# === Objective ===
def objective_direction(metric: str) -> str:
    """ "min" for loss-like metrics (loss, brier, ece, hd95, perplexity, cost, ...: the
    same rule `runs list --sort` uses), "max" for the rest."""
    return "min" if lower_is_better(metric.removeprefix("val_")) else "max"


def default_objective(domain: str, task: str) -> str:
    """`val_loss` (the last epoch's, history.csv) for domains that train in epochs with a
    validation split, so the search never selects on the test split that metrics.json
    reports; else (RL: no validation split, evaluation episodes apart from training) the
    headline metric of the domain's first tour leg for `task`."""
    from pipelines.domains import get
    from pipelines.runs import TASK_HEADLINES

    smoke = get(domain).smoke_run
    if smoke is None or smoke.progress == "epoch":
        return "val_loss"
    legs = _leg_headlines(domain, task)
    return legs[0] if legs else (TASK_HEADLINES.get(task) or ("loss",))[0]


def parse_duration(text: str | int | float | None) -> float | None:
    """`30m`, `2h`, `90s`, `1h30m` or plain seconds, as seconds (None: no limit)."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        parts = re.fullmatch(
            r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
        )
        if not parts or not any(parts.groups()):
            raise UserError(f"--max-time {text!r}: expected a duration such as 30m, 2h, 90s")
        hours, minutes, secs = (float(g) if g else 0.0 for g in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise UserError(f"--max-time must be positive (got {text!r})")
    return seconds


# === Settings, checked before TensorFlow ===
@dataclass
class Search:
    """What one `tune` command asks for, resolved and checked (no TensorFlow yet)."""

    api: DomainAPI
    base: Any  # the validated base config
    space: Space | None  # None: the default space, made once the zoo is loaded
    trials: int
    algorithm: str
    objective: str
    direction: str
    path: Path
    max_time: float | None
    seed: int
    population: int
    sample_size: int
    size_objective: str = "parameters"
    workers: int = 1  # trials at once, each in a worker process on this machine
    worker_id: str | None = None  # several machines: "chief" (the oracle) or a worker's id
    oracle_address: str | None = None  # several machines: HOST:PORT of the chief
    cv: int | None = None  # K: score each trial by K-fold cross-validation, refit the best

    @property
    def budget_key(self) -> str | None:
        plain = to_plain(self.base)
        return next((k for k in BUDGET_KEYS if get_key(plain, k) is not None), None)

    def settings(self, space: Space) -> dict[str, Any]:
        return {
            "domain": self.api.name,
            "task": getattr(self.base, "task", self.api.name),
            "algorithm": self.algorithm,
            "objective": self.objective,
            "direction": self.direction,
            "size_objective": self.size_objective,
            "seed": self.seed,
            **({"cv": self.cv} if self.cv else {}),
            **(
                {"population": self.population, "sample_size": self.sample_size}
                if self.algorithm == "evolution"
                else {}
            ),
            "space": {p.key: p.describe() for p in space},
            "base_config": to_plain(self.base),
        }


def plan(
    api: DomainAPI,
    *,
    config: str | None,
    data: str | None,
    overrides: list[str] | tuple[str, ...],
    task: str | None,
    space: str | Path | None,
    trials: int,
    algorithm: str,
    max_time: str | float | None,
    run_dir: str | Path | None,
    objective: str | None,
    seed: int | None,
    population: int,
    sample_size: int,
    size_objective: str = "parameters",
    workers: int = 1,
    worker_id: str | None = None,
    oracle_address: str | None = None,
    cv: int | None = None,
) -> Search:
    """Resolve and check a search; every refusal here comes before TensorFlow loads."""
    if algorithm not in ALGORITHMS:
        raise UserError(f"--algorithm {algorithm!r}: choose {', '.join(ALGORITHMS)}")
    if not isinstance(trials, int) or trials < 1:
        raise UserError(f"--trials must be at least 1 (got {trials!r})")
    if size_objective not in SIZE_OBJECTIVES:
        raise UserError(f"--size-objective {size_objective!r}: choose {', '.join(SIZE_OBJECTIVES)}")
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise UserError(f"--cv must be at least 2 folds (got {cv!r})")
    worker_id, oracle_address = tune_workers.role(worker_id, oracle_address)
    tune_workers.check_roles(workers, trials, worker_id, oracle_address, run_dir)
    if population < 2 or not 1 <= sample_size <= population:
        raise UserError(
            f"evolution needs --population >= 2 and 1 <= --sample-size <= --population "
            f"(got {population}, {sample_size})"
        )
    base = api.resolve_config(config, overrides, task=task, data=data, seed=seed)
    seconds = parse_duration(max_time)
    checked = read_space(space, api.domain.config_class, base) if space is not None else None
    api.domain.check(base)  # last: a domain's check may read its data
    task_name = getattr(base, "task", api.name)
    objective = objective or default_objective(api.name, task_name)
    if cv is not None and not objective.startswith("val_"):
        raise UserError(
            f"--cv scores each fold on its validation split, so the objective must be a "
            f"val_* metric of history.csv (got {objective}); without a validation split "
            f"(rl) there is nothing to fold"
        )
    path = (
        Path(run_dir)
        if run_dir
        else runner.default_run_dir(api.name, task_name).with_name(
            "tune-" + time.strftime("%Y%m%d-%H%M%S")
        )
    )
    search = Search(
        api,
        base,
        checked,
        trials,
        algorithm,
        objective,
        objective_direction(objective),
        path,
        seconds,
        int(get_key(to_plain(base), "runtime.seed", 0) or 0) if seed is None else seed,
        population,
        sample_size,
        size_objective,
        workers,
        worker_id,
        oracle_address,
        cv,
    )
    if checked is not None and algorithm == "hyperband" and search.budget_key in checked.keys():
        raise UserError(f"hyperband sets {search.budget_key} itself; leave it out of --space")
    check_folder(search, checked)
    return search


def check_folder(search: Search, space: Space | None) -> None:
    """A folder that holds another search (domain, task, settings) is refused."""
    path = search.path
    if path.exists() and not path.is_dir():
        raise UserError(f"--run-dir {path} is a file, not a folder")
    saved_path = path / SETTINGS
    if not saved_path.is_file():
        if path.is_dir() and any(path.iterdir()):
            raise UserError(f"--run-dir {path} exists and holds no search ({SETTINGS} missing)")
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    if saved.get("domain") != search.api.name:
        raise UserError(
            f"{path} holds a {saved.get('domain')} search, not a {search.api.name} one; "
            "use a new --run-dir"
        )
    wanted = search.settings(space) if space is not None else None
    saved.setdefault("size_objective", "parameters")  # searches from before the option
    for key in ("task", "algorithm", "objective", "size_objective", "cv", "base_config"):
        if saved.get(key) != search.settings(space or Space([])).get(key):
            raise UserError(
                f"{path} holds a search with a different {key.replace('_', ' ')}; rerun it as "
                "it was started, or use a new --run-dir"
            )
    if wanted is not None and saved.get("space") != wanted["space"]:
        raise UserError(f"{path} holds a search over a different space; use a new --run-dir")


# === Running ===
def run_search(search: Search) -> TuneResult | None:
    """Train the trials (TensorFlow from here on) and write search.json. A worker of a
    search spread over several machines returns None: its chief writes search.json."""
    space = search.space or make_default_space(search)
    if not len(space):
        raise UserError(f"{search.api.name}: the default space is empty; give --space FILE")
    check_model_options(search, space)
    settings_path = search.path / SETTINGS
    saved = yaml.safe_load(settings_path.read_text()) if settings_path.is_file() else None
    if saved is not None and saved.get("space") != search.settings(space)["space"]:
        raise UserError(f"{search.path} holds a search over a different space; use a new --run-dir")
    if tune_workers.is_worker(search):
        tune_workers.run_worker(search, space)
        return None
    search.path.mkdir(parents=True, exist_ok=True)
    write_atomic(settings_path, yaml.safe_dump(search.settings(space), sort_keys=False))
    LOG.info(
        "tune %s: %s search over %s, %d trials, objective %s (%s), size objective %s in %s",
        search.api.name,
        search.algorithm,
        ", ".join(space.keys()),
        search.trials,
        search.objective,
        search.direction,
        search.size_objective,
        search.path,
    )
    if search.workers > 1 or search.worker_id is not None:  # the chief of workers
        tune_workers.serve(search, space)
    else:
        import contextlib
        import sys

        from pipelines.tune_tuner import tuner_class

        with contextlib.redirect_stdout(sys.stderr):  # KerasTuner's "Reloading Tuner from ..."
            tuner = tuner_class()(search, space)
        tuner.run()
    if search.cv:
        refit(search)
    return result_of(search.path)


def refit(search: Search) -> Path | None:
    """`--cv`: train the best trial's values once on the usual split (no folds) into
    `<run-dir>/refit/<id>`, the run `TuneResult.best` is; recorded in search.json."""
    path = search.path / SEARCH
    data = json.loads(path.read_text()) if path.is_file() else {}
    best = data.get("best")
    if not best:
        return None
    run_path = search.path / "refit" / best["id"]
    LOG.info("tune: refitting trial %s on the usual split into %s", best["id"], run_path)
    runner.execute(
        search.api.name,
        trial_config(search, best["values"]),  # hyperband's budget is among the values
        run_path,
        search.api.domain.train,
        call=f"pipelines.{search.api.name}.tune(...) refit of trial {best['id']}",
    )
    data["refit"] = {"trial": best["id"], "run": str(run_path)}
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    return run_path


def make_default_space(search: Search) -> Space:
    """The default space of the base config (shared.search.default_space), with the zoo
    model's options where the config's model section takes them."""
    plain = to_plain(search.base)
    model = search.base.model if hasattr(search.base, "model") else None
    options = None
    accepts = lambda option, value: True  # noqa: E731
    if model is not None and hasattr(model, "options") and callable(model.options):
        from shared.zoo import registry

        name = getattr(model, "name", None)
        if name in registry.MODELS:
            options = {**registry.model_options(name), **model.options()}
            accepts = _zoo_accepts(name)
    space = default_space(plain, search.api.domain.config_class, options, accepts)
    if search.algorithm == "hyperband":
        space = Space([p for p in space if p.key != search.budget_key], space.source)
    return space


def _zoo_accepts(name: str):
    """Whether zoo model `name` builds with one option changed (at its preset input)."""
    from shared.zoo import registry

    spec = registry.model_spec(name)

    def accepts(option: str, value: Any) -> bool:
        if spec.preset_input is None:
            return False
        try:
            registry.build_model(
                name,
                input_shape=spec.preset_input,
                num_classes=spec.preset_classes,
                **{option: value},
            )
        except (UserError, ValueError):
            return False
        return True

    return accepts


def check_model_options(search: Search, space: Space) -> None:
    """`model.<option>` keys of a zoo model must be its options (the schema lets any
    through there): a UserError naming the valid ones, before any trial trains."""
    model = getattr(search.base, "model", None)
    free = model is not None and type(model).model_config.get("extra") == "allow"
    keys = [k for k in space.keys() if k.startswith("model.") and k.count(".") == 1]
    if not (free and keys):
        return
    from shared.zoo import registry

    name = getattr(model, "name", None)
    if name not in registry.MODELS:
        return
    fields = set(type(model).model_fields)
    defaults = registry.model_options(name)
    valid = set(defaults)
    for key in keys:
        option = key.split(".", 1)[1]
        if option not in fields and option not in valid:
            import difflib

            close = difflib.get_close_matches(option, sorted(valid), n=3)
            hint = f" (did you mean {', '.join('model.' + c for c in close)}?)" if close else ""
            raise UserError(
                f"unknown config key {key!r} in {space.source}: model {name!r} has no option "
                f"{option!r}{hint}; its options: {', '.join(sorted(valid)) or '(none)'}"
            )
        _check_list_option(key, defaults.get(option), space)


def _check_list_option(key: str, default: Any, space: Space) -> None:
    """A zoo option that takes a list (small_cnn's `filters`) offered as strings ('[16,
    32]') would fail in every trial: refuse it up front, saying how to write it."""
    param = next(p for p in space if p.key == key)
    if not isinstance(default, list | tuple) or param.type != "choice" or param.encoded:
        return
    if any(isinstance(v, str) for v in param.values):
        raise UserError(
            f"{key} in {space.source}: the option takes a list, and the choice offers "
            f"strings ({', '.join(repr(v) for v in param.values[:3])}"
            f"{', ...' if len(param.values) > 3 else ''}); write each value "
            "as a YAML list, e.g. values: [[16, 32], [32, 64]]"
        )


def trial_config(search: Search, values: dict[str, Any], budget: int | None = None):
    """The validated config of one trial: the base config with its values set."""
    plain = to_plain(search.base)
    for key, value in values.items():
        plain = set_key(plain, key, value)
    if budget is not None and search.budget_key is not None:
        plain = set_key(plain, search.budget_key, budget)
    return validate(search.api.domain.config_class, plain, source="the trial's values")


def trial_budget(search: Search, values: dict[str, Any]) -> int | None:
    """Hyperband's budget of a trial as the value of the config's budget key (None: not
    a hyperband trial): epochs as they are, env steps as ninths of agent.total_steps."""
    budget = values.get("tuner/epochs")
    if budget is not None and search.budget_key == "agent.total_steps":
        total = get_key(to_plain(search.base), "agent.total_steps")
        budget = max(1, round(total * budget / STEP_UNITS))
    return budget


def score(run_path: Path, objective: str) -> float:
    """The trial's objective: from metrics.json, or (`val_*`) history.csv's last row."""
    if objective.startswith("val_"):
        import csv

        with open(run_path / "history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        found = rows[-1] if rows else {}
        source = "history.csv"
    else:
        found = json.loads((run_path / "metrics.json").read_text())
        source = "metrics.json"
    value = found.get(objective)
    if value in (None, ""):
        known = sorted(k for k, v in found.items() if k not in ("split", "task", "domain"))
        raise ObjectiveMissing(
            f"--objective {objective}: the trial's {source} has no such metric; it has "
            f"{', '.join(known)}"
        )
    return float(value)


class ObjectiveMissing(UserError):
    """The objective names no metric the runs write: every trial would fail alike."""
