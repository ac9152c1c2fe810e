"""`deepfield <domain> tune`: a KerasTuner search whose trials are ordinary `train` runs.

A trial is the domain's `train` (the same `runner.execute` the CLI uses, in this process)
of the base config (`--config`, `--set`, `--data`) with the trial's sampled values set,
written as a normal run directory under `<run-dir>/trials/<trial_id>`, so `runs list`,
TensorBoard and resume work on trials. It is scored by `objective` from the trial's
metrics.json (`val_*` objectives from the last row of its history.csv instead).

```
<run-dir>/tune.yaml      the search's settings (domain, task, algorithm, objective, space, base config)
<run-dir>/search.json    every trial (id, values, status, objective, run, wall time) and the best
<run-dir>/trials/<id>/   one run directory per trial
<run-dir>/tuner/         KerasTuner's project (oracle state, trial records): resume reads it
```

Rerunning the same command resumes: finished trials are kept, the trial a kill cut short
resumes from its checkpoints, and a larger `--trials` adds trials. A trial that crashes
is recorded as failed and the search goes on. Trials run in-process because a
TensorFlow start-up costs more than a tiny trial (measured: about 5 s per trial);
`keras.backend.clear_session()` runs between trials.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines import runner
from pipelines.run import Run
from pipelines.runs import _leg_headlines, lower_is_better
from pipelines.table import format_number
from pipelines.tune_results import (
    PARETO_PLOT,
    SEARCH,
    TuneResult,
    pareto_front,
    pareto_plot,
    read_parameters,
    record_parameters,
    result_of,
    short,
)
from shared.config import to_plain, validate
from shared.errors import UserError
from shared.run_dir import write_atomic
from shared.search.default_space import default_space
from shared.search.space import Space, get_key, read_space, set_key

if TYPE_CHECKING:
    from pipelines.api import DomainAPI

LOG = logging.getLogger("deepfield")
ALGORITHMS = ("random", "bayesian", "hyperband", "evolution")
BUDGET_KEYS = ("train.epochs", "agent.total_steps")  # what hyperband varies, first found
STEP_UNITS = 9  # hyperband's budget for step-counted training: ninths of total_steps
SETTINGS = "tune.yaml"
PROJECT = "tuner"
TRIALS = "trials"


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
            "seed": self.seed,
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
) -> Search:
    """Resolve and check a search; every refusal here comes before TensorFlow loads."""
    if algorithm not in ALGORITHMS:
        raise UserError(f"--algorithm {algorithm!r}: choose {', '.join(ALGORITHMS)}")
    if not isinstance(trials, int) or trials < 1:
        raise UserError(f"--trials must be at least 1 (got {trials!r})")
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
    for key in ("task", "algorithm", "objective", "base_config"):
        if saved.get(key) != search.settings(space or Space([]))[key]:
            raise UserError(
                f"{path} holds a search with a different {key.replace('_', ' ')}; rerun it as "
                "it was started, or use a new --run-dir"
            )
    if wanted is not None and saved.get("space") != wanted["space"]:
        raise UserError(f"{path} holds a search over a different space; use a new --run-dir")


# === Running ===
def run_search(search: Search) -> TuneResult:
    """Train the trials (TensorFlow from here on) and write search.json."""
    space = search.space or make_default_space(search)
    if not len(space):
        raise UserError(f"{search.api.name}: the default space is empty; give --space FILE")
    check_model_options(search, space)
    settings_path = search.path / SETTINGS
    saved = yaml.safe_load(settings_path.read_text()) if settings_path.is_file() else None
    if saved is not None and saved.get("space") != search.settings(space)["space"]:
        raise UserError(f"{search.path} holds a search over a different space; use a new --run-dir")
    search.path.mkdir(parents=True, exist_ok=True)
    write_atomic(settings_path, yaml.safe_dump(search.settings(space), sort_keys=False))
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):  # KerasTuner's "Reloading Tuner from ..."
        tuner = _tuner_class()(search, space)
    LOG.info(
        "tune %s: %s search over %s, %d trials, objective %s (%s) in %s",
        search.api.name,
        search.algorithm,
        ", ".join(space.keys()),
        search.trials,
        search.objective,
        search.direction,
        search.path,
    )
    tuner.run()
    return result_of(search.path)


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
    valid = set(registry.model_options(name))
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


def _tuner_class():
    """The BaseTuner subclass, defined on first use (importing KerasTuner loads Keras)."""
    global DomainTuner
    if DomainTuner is not None:
        return DomainTuner
    import keras_tuner
    from keras_tuner.src import errors as kt_errors

    class Fatal(kt_errors.FatalError):
        pass

    class _DomainTuner(keras_tuner.engine.base_tuner.BaseTuner):
        """Each trial trains the domain into `<run-dir>/trials/<id>`; scored from its files."""

        def __init__(self, search: Search, space: Space):
            self.job = search
            self.space = space
            self.deadline = None
            super().__init__(
                make_oracle(search, space),
                directory=str(search.path),
                project_name=PROJECT,
                overwrite=False,
            )
            self.oracle.max_trials = search.trials  # a rerun may ask for more
            self.oracle.max_consecutive_failed_trials = 10**9  # failures never stop it
            self.oracle.verbose = 0

        def run(self) -> None:
            started = time.time()
            if self.job.max_time is not None:
                self.deadline = started + self.job.max_time
            try:
                self.search_trials()
            except OutOfTime:
                LOG.info("tune: --max-time reached; no new trials started")
            except Fatal as err:
                raise UserError(str(err)) from None
            finally:
                write_search(self.job, self.space, self.oracle)

        def search_trials(self) -> None:
            self.search()  # BaseTuner.search: create, run, end each trial

        def pre_create_trial(self):
            if self.deadline is not None and time.time() >= self.deadline:
                raise OutOfTime

        def run_trial(self, trial, *args, **kwargs):
            values = self.space.config_values(trial.hyperparameters.values)
            budget = trial_budget(self.job, trial.hyperparameters.values)
            path = self.job.path / TRIALS / trial.trial_id
            LOG.info("trial %s: %s", trial.trial_id, _values_text(values, budget, self.job))
            try:
                config = trial_config(self.job, values, budget)
                self.job.api.domain.check(config)
                runner.execute(
                    self.job.api.name,
                    config,
                    path,
                    self.job.api.domain.train,
                    call=f"pipelines.{self.job.api.name}.tune(...) trial {trial.trial_id}",
                )
            except Exception as err:
                LOG.warning("trial %s failed: %s: %s", trial.trial_id, type(err).__name__, err)
                raise
            finally:
                _release_memory()
            try:
                value = score(path, self.job.objective)
            except ObjectiveMissing as err:
                raise Fatal(str(err)) from None
            LOG.info("trial %s: %s = %s", trial.trial_id, self.job.objective, format_number(value))
            record_parameters(self.job.path, trial.trial_id, path)
            return {self.job.objective: value}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            write_search(self.job, self.space, self.oracle)

        def save_model(self, trial_id, model, step=0):
            """The trial's runner already saved model.keras in its run folder."""

        def load_model(self, trial):
            return Run(self.job.path / TRIALS / trial.trial_id).load_model()

    DomainTuner = _DomainTuner
    return DomainTuner


DomainTuner = None


class OutOfTime(Exception):
    """--max-time is spent: start no new trial."""


def _release_memory() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()


def _values_text(values: dict[str, Any], budget: int | None, search: Search) -> str:
    shown = [f"{k}={short(v)}" for k, v in values.items()]
    if budget is not None:
        shown.append(f"{search.budget_key}={budget}")
    return ", ".join(shown) or "(base config)"


def make_oracle(search: Search, space: Space):
    """The KerasTuner oracle of `search.algorithm` over `space`."""
    import keras_tuner

    objective = keras_tuner.Objective(search.objective, search.direction)
    common = {"objective": objective, "hyperparameters": space.to_hyperparameters()}
    common.update(seed=search.seed + 1, tune_new_entries=False, allow_new_entries=False)
    if search.algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=search.trials, **common)
    if search.algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=search.trials, num_initial_points=min(3, search.trials), **common
        )
    if search.algorithm == "hyperband":
        key = search.budget_key
        if key is None:
            raise UserError(f"hyperband needs {' or '.join(BUDGET_KEYS)} in the config")
        top = STEP_UNITS if key == "agent.total_steps" else int(get_key(to_plain(search.base), key))
        if top < 2:
            raise UserError(f"hyperband needs {key} of at least 2 (got {top})")
        return keras_tuner.oracles.HyperbandOracle(max_epochs=top, factor=3, **common)
    from shared.search.evolution import RegularizedEvolutionOracle

    return RegularizedEvolutionOracle(
        max_trials=search.trials,
        population_size=search.population,
        sample_size=search.sample_size,
        **common,
    )


# === search.json, the table, the result ===
STATUS = {"COMPLETED": "complete", "FAILED": "failed", "INVALID": "failed", "RUNNING": "running"}


def write_search(search: Search, space: Space, oracle) -> dict[str, Any]:
    """search.json from the oracle's trials (written after every trial)."""
    sizes = read_parameters(search.path)
    rows = []
    for trial_id in sorted(oracle.trials, key=lambda t: int(t)):
        trial = oracle.trials[trial_id]
        run_path = search.path / TRIALS / trial_id
        status = (
            json.loads((run_path / "status.json").read_text())
            if (run_path / "status.json").is_file()
            else {}
        )
        values = space.config_values(trial.hyperparameters.values)
        budget = trial_budget(search, trial.hyperparameters.values)
        if budget is not None:
            values[search.budget_key] = budget
        state = STATUS.get(str(trial.status), str(trial.status).lower())
        message = (trial.message or "").strip().splitlines()[-1:] if state == "failed" else []
        rows.append(
            {
                "id": trial_id,
                "values": values,
                "status": state,
                "objective": trial.score if state == "complete" else None,
                "run": str(run_path),
                "wall_seconds": status.get("wall_seconds"),
                "parameters": sizes.get(trial_id),
                **({"error": message[0]} if message else {}),
            }
        )
    done = [r for r in rows if r["status"] == "complete" and r["objective"] is not None]
    pick = max if search.direction == "max" else min
    best = pick(done, key=lambda r: r["objective"]) if done else None
    data = {
        "domain": search.api.name,
        "task": getattr(search.base, "task", search.api.name),
        "algorithm": search.algorithm,
        "objective": search.objective,
        "direction": search.direction,
        "space": {p.key: p.describe() for p in space},
        "trials": rows,
        "best": best,
        "pareto": pareto_front(rows, search.direction),
    }
    if hasattr(oracle, "population"):
        data["population"] = list(oracle.population)
    write_atomic(search.path / SEARCH, json.dumps(data, indent=2, default=str) + "\n")
    if data["pareto"]:
        pareto_plot(data, search.path / PARETO_PLOT)
    return data
