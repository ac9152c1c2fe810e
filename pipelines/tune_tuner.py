"""KerasTuner's side of `deepfield <domain> tune`: the oracle, the tuner whose trials are
train runs, each trial's size (the second objective), and search.json.

One tuner class serves two of the ways a search runs (see pipelines.tune_workers):
in-process (`--workers 1`: tuner and oracle in this process) and as a worker, whose
oracle is a gRPC client of the chief's (KerasTuner's KERASTUNER_* variables). The chief
holds no tuner, only the oracle (`load_oracle`), and serves it.

A trial's size travels with its objective as trial metrics (`SIZE_METRICS`), so it
reaches the oracle, and search.json, from whichever process trained it; it is measured
on the model object the trial's run saved (`shared.model_io.watch_saves`), not a reload.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import runner
from pipelines.run import Run
from pipelines.table import format_number
from pipelines.tune_results import (
    PARETO_PLOT,
    SEARCH,
    SIZE_COLUMNS,
    pareto_front,
    pareto_plot,
    short,
)
from shared.errors import UserError
from shared.run_dir import RunDir, write_atomic

if TYPE_CHECKING:
    from pipelines.tune import Search
    from shared.search.space import Space

LOG = logging.getLogger("deepfield")
PROJECT = "tuner"  # KerasTuner's project folder under the search's
TRIALS = "trials"
WORKER_RECORD = "workers.json"  # in PROJECT: trial id -> the tuner id that ran it
# The trial metrics a trial's sizes travel in, next to its objective.
SIZE_METRICS = {"parameters": "size_parameters", "latency_ms": "size_latency_ms"}
LATENCY_CALLS = 40  # timed batch-1 calls after warm-up; the median is recorded
STATUS = {"COMPLETED": "complete", "FAILED": "failed", "INVALID": "failed", "RUNNING": "running"}


# === The oracle ===
def make_oracle(search: Search, space: Space):
    """The KerasTuner oracle of `search.algorithm` over `space`."""
    import keras_tuner

    from pipelines.tune import BUDGET_KEYS, STEP_UNITS
    from shared.config import get_key, to_plain

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


def prepare_oracle(oracle, search: Search) -> None:
    """The oracle as this command wants it: reloaded from the search folder if saved
    there, this command's limits, and the trials a stopped search left running put back
    in its queue, so whichever tuner asks next resumes one from its run's checkpoints
    (the tuner that ran it may be gone: a search begun with more workers, or fewer)."""
    saved = search.path / PROJECT / "oracle.json"
    if not oracle.trials and saved.is_file():
        oracle.reload()
    oracle.max_trials = search.trials  # a rerun may ask for more
    oracle.max_consecutive_failed_trials = 10**9  # failures never stop it
    oracle.verbose = 0
    if oracle.ongoing_trials:
        for trial in oracle.ongoing_trials.values():
            # end_trial saves the oracle before it lets go of the trial: skip ended ones
            running = str(trial.status) == "RUNNING"
            if running and trial.trial_id not in oracle._retry_queue:
                oracle._retry_queue.append(trial.trial_id)
        oracle.ongoing_trials.clear()
        oracle.save()


def load_oracle(search: Search, space: Space):
    """The chief's oracle, with no tuner around it."""
    oracle = make_oracle(search, space)
    oracle._set_project_dir(str(search.path), PROJECT)
    prepare_oracle(oracle, search)
    return oracle


def record_worker(search_path: Path, trial_id: str, tuner_id: str) -> None:
    """Note which tuner runs a trial (only the process that holds the oracle writes)."""
    path = Path(search_path) / PROJECT / WORKER_RECORD
    record = json.loads(path.read_text()) if path.is_file() else {}
    record[trial_id] = tuner_id
    write_atomic(path, json.dumps(record, indent=1) + "\n")


# === The tuner ===
def tuner_class():
    """The BaseTuner subclass, defined on first use (importing KerasTuner loads Keras)."""
    global DomainTuner
    if DomainTuner is not None:
        return DomainTuner
    import keras_tuner
    from keras_tuner.src import errors as kt_errors
    from keras_tuner.src.engine import trial as trial_module

    from pipelines import tune
    from shared import model_io

    class Fatal(kt_errors.FatalError):
        pass

    class _DomainTuner(keras_tuner.engine.base_tuner.BaseTuner):
        """Each trial trains the domain into `<run-dir>/trials/<id>`; scored from its files."""

        def __init__(self, search: Search, space: Space):
            self.job = search
            self.space = space
            self.deadline = None
            self.ran: list[str] = []  # the trials this tuner trained
            super().__init__(
                make_oracle(search, space),
                directory=str(search.path),
                project_name=PROJECT,
                overwrite=False,
            )
            if self._is_worker():
                _wait_when_idle(self.oracle, trial_module.TrialStatus.IDLE)
            else:
                prepare_oracle(self.oracle, search)

        def run(self) -> None:
            if self.job.max_time is not None and not self._is_worker():  # a chief's is its own
                self.deadline = time.time() + self.job.max_time
            try:
                self.search()  # BaseTuner.search: create, run, end each trial
            except OutOfTime:
                LOG.info("tune: --max-time reached; no new trials started")
            except Fatal as err:
                raise UserError(str(err)) from None
            finally:
                if not self._is_worker():
                    write_search(self.job, self.space, self.oracle)

        def pre_create_trial(self):
            if self.deadline is not None and time.time() >= self.deadline:
                raise OutOfTime

        def run_trial(self, trial, *args, **kwargs):
            job = self.job
            values = self.space.config_values(trial.hyperparameters.values)
            budget = tune.trial_budget(job, trial.hyperparameters.values)
            path = job.path / TRIALS / trial.trial_id
            if not self._is_worker():
                record_worker(job.path, trial.trial_id, self.tuner_id)
            LOG.info("trial %s: %s", trial.trial_id, values_text(values, budget, job))
            folds = fold_paths(job, path)
            model_file = (folds[0] / "model.keras").resolve()
            saved: list[Any] = []  # the model object the run saves as its model.keras

            def keep(model, where: Path) -> None:
                if Path(where).resolve() == model_file:
                    saved[:] = [model]

            try:
                config = tune.trial_config(job, values, budget)
                job.api.domain.check(config)
                call = f"pipelines.{job.api.name}.tune(...) trial {trial.trial_id}"
                with model_io.watch_saves(keep):
                    if job.cv:
                        for k, fold_path in enumerate(folds):
                            train_fold(job, config, fold_path, k, f"{call} fold {k}")
                    else:
                        runner.execute(job.api.name, config, path, job.api.domain.train, call=call)
                sizes = trial_sizes(saved[0] if saved else None, folds[0], job.size_objective)
            except NoFolds as err:
                raise Fatal(str(err)) from None
            except Exception as err:
                LOG.warning("trial %s failed: %s: %s", trial.trial_id, type(err).__name__, err)
                raise
            finally:
                saved.clear()
                release_memory()
            try:
                value = sum(tune.score(f, job.objective) for f in folds) / len(folds)
            except tune.ObjectiveMissing as err:
                raise Fatal(str(err)) from None
            LOG.info("trial %s: %s = %s", trial.trial_id, job.objective, format_number(value))
            self.ran.append(trial.trial_id)
            return {job.objective: value, **sizes}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if not self._is_worker():
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


class NoFolds(UserError):
    """--cv on data whose validation split is not cut by Deepfield: every trial alike."""


# === Cross-validation (--cv K) ===
def fold_paths(search: Search, trial_path: Path) -> list[Path]:
    """The runs a trial trains: itself, or (--cv K) `<trial>/fold-<k>` for each fold."""
    if not search.cv:
        return [trial_path]
    return [trial_path / f"fold-{k}" for k in range(search.cv)]


def train_fold(search: Search, config, path: Path, k: int, call: str) -> None:
    """Train fold k of the trial into `path`: the domain's data loads inside
    cross_validation_fold, so its validation split is fold k of the rows outside test
    (the run's data_splits.json says so). A run whose data cut no fold (the source
    brought its own validation split) is refused, and removed if this call made it."""
    import shutil

    from shared.data.splits import cross_validation_fold

    existed = path.exists()
    with cross_validation_fold(k, search.cv):
        runner.execute(search.api.name, config, path, search.api.domain.train, call=call)
    splits = RunDir(path).splits_path
    cut = json.loads(splits.read_text()).get("cv") if splits.is_file() else None
    if cut != {"fold": k, "folds": search.cv}:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        raise NoFolds(
            f"--cv {search.cv}: {search.api.name}'s data came with its own validation split "
            "(or none was cut), so there are no folds to cut; search without --cv"
        )


def _wait_when_idle(client, idle) -> None:
    """A worker's oracle client that waits a moment when the oracle has no trial to give
    yet (hyperband between rounds), where BaseTuner.search would ask again at once."""
    ask = client.create_trial

    def create_trial(tuner_id):
        trial = ask(tuner_id)
        if trial.status == idle:
            time.sleep(1.0)
        return trial

    client.create_trial = create_trial


def release_memory() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()


def values_text(values: dict[str, Any], budget: int | None, search: Search) -> str:
    shown = [f"{k}={short(v)}" for k, v in values.items()]
    if budget is not None:
        shown.append(f"{search.budget_key}={budget}")
    return ", ".join(shown) or "(base config)"


# === The second objective ===
def trial_sizes(model, run_path: Path, size_objective: str) -> dict[str, float]:
    """The trial's size metrics: its model's parameters and, for the latency objective,
    the median batch-1 latency in milliseconds (shared.compression.measure, as `compress`
    measures it). `model` is the object the run saved; None (a run finished before this
    process, resumed as complete) loads its model.keras."""
    if model is None:
        model = Run(run_path).load_model()
    sizes = {SIZE_METRICS["parameters"]: float(model.count_params())}
    if size_objective == "latency":
        from shared.compression.measure import latency_ms

        try:
            sizes[SIZE_METRICS["latency_ms"]] = latency_ms(model, repeats=LATENCY_CALLS)
        except Exception as err:  # noqa: BLE001 - a model it cannot time keeps its score
            LOG.warning("%s: latency not measured: %s: %s", run_path, type(err).__name__, err)
    return sizes


def fold_scores(folds: list[Path], objective: str) -> list[float | None]:
    """Each fold run's objective (None where it has not finished)."""
    from pipelines.tune import score

    scores: list[float | None] = []
    for path in folds:
        try:
            scores.append(score(path, objective) if RunDir(path).is_complete() else None)
        except (OSError, UserError):
            scores.append(None)
    return scores


def size_of(trial, name: str) -> float | None:
    metric = SIZE_METRICS[name]
    return trial.metrics.get_last_value(metric) if trial.metrics.exists(metric) else None


# === search.json ===
def write_search(search: Search, space: Space, oracle) -> dict[str, Any]:
    """search.json from the oracle's trials (written after every trial)."""
    from pipelines.tune import trial_budget

    record = search.path / PROJECT / WORKER_RECORD
    workers = json.loads(record.read_text()) if record.is_file() else {}
    rows = []
    for trial_id in sorted(oracle.trials, key=lambda t: int(t)):
        trial = oracle.trials[trial_id]
        run_path = search.path / TRIALS / trial_id
        folds = fold_paths(search, run_path)
        statuses = [RunDir(f).status() for f in folds]
        walls = [s["wall_seconds"] for s in statuses if s.get("wall_seconds") is not None]
        values = space.config_values(trial.hyperparameters.values)
        budget = trial_budget(search, trial.hyperparameters.values)
        if budget is not None:
            values[search.budget_key] = budget
        state = STATUS.get(str(trial.status), str(trial.status).lower())
        message = (trial.message or "").strip().splitlines()[-1:] if state == "failed" else []
        parameters = size_of(trial, "parameters")
        rows.append(
            {
                "id": trial_id,
                "values": values,
                "status": state,
                "objective": trial.score if state == "complete" else None,
                "run": str(run_path),
                "worker": workers.get(trial_id),
                "wall_seconds": round(sum(walls), 1) if walls else None,
                "parameters": int(parameters) if parameters is not None else None,
                "latency_ms": size_of(trial, "latency_ms"),
                **({"error": message[0]} if message else {}),
                **({"folds": fold_scores(folds, search.objective)} if search.cv else {}),
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
        "size_objective": search.size_objective,
        **({"cv": search.cv} if search.cv else {}),
        "space": {p.key: p.describe() for p in space},
        "trials": rows,
        "best": best,
        "pareto": pareto_front(rows, search.direction, SIZE_COLUMNS[search.size_objective]),
    }
    if hasattr(oracle, "population"):
        data["population"] = list(oracle.population)
    write_atomic(search.path / SEARCH, json.dumps(data, indent=2, default=str) + "\n")
    if data["pareto"]:
        pareto_plot(data, search.path / PARETO_PLOT)
    return data
