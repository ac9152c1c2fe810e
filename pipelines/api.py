"""`pipelines.<domain>`: the Python API of one domain, generated from its `Domain`.

from pipelines import vision
run = vision.train(config="digits", data="builtin:digits")
run.metrics["accuracy"], run.plots, run.predict(["digit.png"]), vision.export(run, to="serving")

Every domain gets the same functions (`resolve_config`, `load_data`, `train`, `evaluate`,
`predict`, `explain`, `export`) plus its own verbs (`rl.play`, `finance.monitor`,
`healthcare.read`). Configs are
resolved and checked before any TensorFlow import, so bad input fails fast.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

from pipelines import configs, runner
from pipelines.domains import discover, get
from pipelines.run import Run
from shared.domain import Domain
from shared.errors import UserError

# Python keywords of `train` every domain takes, and the config key each one sets.
COMMON_SHORTCUTS = {
    "data": "data.source",
    "strategy": "runtime.strategy",
    "devices": "runtime.devices",
    "local_workers": "runtime.local_workers",
    "seed": "runtime.seed",
    "deterministic": "runtime.deterministic",
    "track": "runtime.track",
    "precision": "train.precision",
    "jit": "train.jit",
    "epochs": "train.epochs",
}


class DomainAPI:
    """The functions the CLI and notebooks share, for one domain."""

    def __init__(self, domain: Domain):
        self.domain = domain
        self.name = domain.name
        self.__doc__ = f"{domain.name}: {domain.summary}"

    # === Configs ===
    def config_dirs(self) -> list[Path]:
        """Where named configs live: pipelines/configs/<name>/, the package's configs/,
        then the user's saved presets (pipelines.presets: `tune --save-preset NAME`)."""
        from pipelines.presets import user_config_dir

        return [
            configs.CONFIG_ROOT / self.name,
            self.domain.package_dir() / "configs",
            user_config_dir() / self.name,
        ]

    def named_configs(self) -> list[str]:
        return configs.named_configs(self.name, self.config_dirs())

    def resolve_config(
        self,
        config: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        task: str | None = None,
        **shortcuts: Any,
    ):
        """The validated config a `train` would use (named config, `--set`s, keywords).

        Without `config`, `task` picks its named config where the domain has one.
        """
        domain = self.domain
        if task is not None and task not in domain.tasks:
            raise UserError(f"{self.name} tasks: {', '.join(domain.tasks)} (got --task {task})")
        keys: dict[str, Any] = {}
        for keyword, value in shortcuts.items():
            key = COMMON_SHORTCUTS.get(keyword) or domain.train_shortcuts.get(keyword)
            if key is None and "." in keyword:
                key = keyword
            if key is None:
                known = sorted({*COMMON_SHORTCUTS, *domain.train_shortcuts})
                raise UserError(
                    f"{self.name}.train() has no option {keyword!r}; options: {', '.join(known)}"
                )
            keys[key] = str(value) if isinstance(value, Path) else value
        name = config or domain.task_configs.get(task or "")
        return configs.resolve(
            self.name,
            domain.config_class,
            name,
            overrides,
            dirs=self.config_dirs(),
            preset_keys=domain.preset_keys if name is None else (),
            task=task,
            **keys,
        )

    # === Data ===
    def load_data(
        self,
        config: str | None = None,
        data: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        *,
        task: str | None = None,
        **options: Any,
    ):
        """The data `train` would train on, with its train/validation/test splits.

        Takes `train`'s keywords and resolves them as `train` does (`resolve_config`),
        then reads the source with the domain's own loader, seed and leakage-safe
        splitter, so the splits are the ones a run with the same arguments records in
        data_splits.json. Returns the domain's data object (`.summary()` says what it
        holds; tables and texts have `.dataframe()`). Nothing is trained.
        """
        resolved = self.resolve_config(config, overrides, task=task, data=data, **options)
        source = getattr(getattr(resolved, "data", None), "source", None)
        if source:
            self.domain.check_data_spec(source)  # a kind it reads, a path that exists
        return self.domain.load_data(resolved)

    # === Training ===
    def train(
        self,
        config: str | None = None,
        data: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        run_dir: str | Path | None = None,
        *,
        task: str | None = None,
        **options: Any,
    ) -> Run | None:
        """Train into `run_dir` (default runs/<domain>/<task>/<time>); returns the Run.

        Rerunning with the same `run_dir` resumes it. Returns None only inside a
        multi-worker worker other than the chief, which writes no run.
        """
        resolved = self.resolve_config(config, overrides, task=task, data=data, **options)
        self.domain.check(resolved)  # before TensorFlow loads
        path = Path(run_dir) if run_dir else runner.default_run_dir(self.name, resolved.task)
        given = {"config": config, "data": data, "task": task, "run_dir": run_dir, **options}
        shown = [f"{k}={v!r}" for k, v in given.items() if v is not None]
        if overrides:
            shown.append(f"overrides={list(overrides)!r}")
        call = f"pipelines.{self.name}.train({', '.join(shown)})"
        finished = runner.execute(self.name, resolved, path, self.domain.train, call=call)
        return Run(finished.path) if finished else None

    # === Search ===
    def tune(
        self,
        config: str | None = None,
        data: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        run_dir: str | Path | None = None,
        *,
        trials: int,
        task: str | None = None,
        space: str | Path | None = None,
        algorithm: str = "random",
        max_time: str | float | None = None,
        objective: str | None = None,
        seed: int | None = None,
        population: int = 10,
        sample_size: int = 3,
        size_objective: str = "parameters",
        workers: int = 1,
        worker_id: str | None = None,
        oracle_address: str | None = None,
        cv: int | None = None,
    ):
        """Search config values: `trials` trainings of the base config (`config`, `data`,
        `overrides`) with values from `space` (a YAML file; default: the learning rate
        and the model's options), each a run under `run_dir/trials/`. Returns a
        TuneResult: `.best` (a Run), `.trials` (a DataFrame), `.table()`,
        `.save_preset(name)`. Rerunning with the same `run_dir` resumes the search (see
        pipelines.tune). `size_objective` ("parameters" or "latency") is the second
        objective of the Pareto front; `workers` trains that many trials at once, in
        worker processes; `worker_id`/`oracle_address` spread a search over several
        machines (pipelines.tune_workers; a worker returns None). `cv` (K >= 2) scores
        each trial by K-fold cross-validation over the rows outside the test split and
        refits the best on the usual split (`.best` is that run)."""
        from pipelines import tune

        self.domain.require_verb("tune")
        search = tune.plan(
            self,
            config=config,
            data=data,
            overrides=overrides,
            task=task,
            space=space,
            trials=trials,
            algorithm=algorithm,
            max_time=max_time,
            run_dir=run_dir,
            objective=objective,
            seed=seed,
            population=population,
            sample_size=sample_size,
            size_objective=size_objective,
            workers=workers,
            worker_id=worker_id,
            oracle_address=oracle_address,
            cv=cv,
        )  # every refusal before TensorFlow
        return tune.run_search(search)

    # === Compression ===
    def compress(
        self,
        run: Run | str | Path,
        prune: float | None = None,
        quantize: str | None = None,
        distill_from: Run | str | Path | None = None,
        *,
        student: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        epochs: int | None = None,
        alpha: float = 0.1,
        temperature: float = 4.0,
        run_dir: str | Path | None = None,
        task: str | None = None,
    ) -> Run:
        """A new run from finished `run`: pruned to `prune` sparsity while fine-tuning
        for `epochs`, distilled from `distill_from` into `student` (default: the run's
        model at a quarter of its width), and/or quantized (`quantize`: int8, int4,
        float8). Its metrics.json and model card put size, parameters, non-zero
        parameters, latency and the headline metric beside the original's (see
        pipelines.compress)."""
        from pipelines import compress

        self.domain.require_verb("compress")
        plan = compress.plan(
            self,
            run,
            prune=prune,
            quantize=quantize,
            distill_from=distill_from,
            student=student,
            overrides=overrides,
            epochs=epochs,
            alpha=alpha,
            temperature=temperature,
            run_dir=run_dir,
            task=task,
        )  # every refusal before training
        return compress.run_compression(plan)

    # === A finished run ===
    def open(self, run: Run | str | Path, task: str | None = None) -> tuple[Run, Any]:
        """The run and its config; a run of another domain (or task) is a UserError."""
        run = run if isinstance(run, Run) else Run(run)
        if run.domain != self.name:
            raise UserError(
                f"{run.path} is a {run.domain} run, not a {self.name} run; "
                f"use `deepfield {run.domain} ...` or pipelines.{run.domain}"
            )
        config = self.domain.config_class.model_validate(run.config)
        trained = getattr(config, "task", None)
        if task is not None and task != trained:
            raise UserError(f"run {run.path} is a {trained} run, not {task}")
        self.domain.check_run(run.dir, config)
        return run, config

    def evaluate(
        self,
        run: Run | str | Path | None = None,
        data: str | None = None,
        split: str = "test",
        out: str | Path | None = None,
        *,
        model: str | Path | None = None,
        task: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Metrics of a finished run (rewrites its metrics.json, or writes `out`), or of
        an exported model (`model=DIR/NAME[/N]`) on its run's split or another source."""
        self.domain.require_verb("evaluate")
        if data is not None:
            self.domain.check_data_spec(data)
        out = Path(out) if out else None
        if model is not None:
            return self.domain.evaluate_exported(Path(model), data, split, out)
        run, config = self.open(_one_of(run, model), task)
        started = time.time()
        metrics = self.domain.evaluate(run.dir, config, data, split, out, **options)
        from shared.tensorboard_summaries import write_evaluation_summaries

        write_evaluation_summaries(run.dir, metrics, data=data, since=started)  # never raises
        return metrics

    def predict(
        self,
        run: Run | str | Path | None = None,
        inputs: list[str] | str = (),
        *,
        model: str | Path | None = None,
        task: str | None = None,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """One JSON-able dict per input, from a finished run or an exported model."""
        self.domain.require_verb("predict")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        if not inputs:
            raise UserError("predict needs at least one input")
        if model is not None:
            return self.domain.predict_exported(Path(model), inputs)
        run, config = self.open(_one_of(run, model), task)
        return self.domain.predict(run.dir, config, inputs, **options)

    def explain(
        self,
        run: Run | str | Path,
        inputs: list[str] | None = None,
        out: str | Path | None = None,
        *,
        task: str | None = None,
    ) -> Path:
        """An explanation plot for `inputs` (or held-out examples); returns its path."""
        self.domain.require_verb("explain")
        run, config = self.open(run, task)
        return self.domain.explain(run.dir, config, list(inputs or []), Path(out) if out else None)

    def export(
        self,
        run: Run | str | Path,
        to: str | Path,
        name: str | None = None,
        version: int | None = None,
        overwrite: bool = False,
        *,
        base_path: str = "/models",
        task: str | None = None,
        **options: Any,
    ):
        """Export for TF Serving: `to/NAME/N` SavedModel with warmup, `to/models.config`,
        verified in a fresh process. Returns the ExportResult (or the domain's report)."""
        self.domain.require_verb("export")
        run, config = self.open(run, task)
        name = name or self.domain.export_name(run.dir, config)
        return self.domain.export(
            run.dir, config, Path(to), name, version, overwrite, base_path, **options
        )

    def evaluate_exported(self, model, data=None, split="test", out=None) -> dict[str, Any]:
        """Metrics of an exported SavedModel (`DIR/NAME` or `DIR/NAME/N`)."""
        return self.evaluate(None, data, split, out, model=model)

    def predict_exported(self, model, inputs) -> list[dict[str, Any]]:
        """Predictions of an exported SavedModel (`DIR/NAME` or `DIR/NAME/N`)."""
        return self.predict(None, inputs, model=model)

    # === The domain's own verbs ===
    def verb(self, name: str, run: Run | str | Path | None = None):
        """The function of verb `name` (bound to `run` when given)."""
        self.domain.require_verb(name)
        spec = self.domain.extra_verb(name)
        if spec is None:  # a common verb
            method = getattr(self, name)
            return (lambda *a, **k: method(run, *a, **k)) if run is not None else method
        method = getattr(self.domain, name)

        def call(*args: Any, **options: Any):
            if not spec.needs_run:
                return method(*args, **options)
            target, rest = (run, args) if run is not None else (args[0], args[1:])
            opened, config = self.open(target, options.pop("task", None))
            return method(opened.dir, config, *rest, **options)

        call.__name__ = name
        call.__doc__ = spec.help
        return call

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self.domain.extra_verb(name) is not None or is_any_verb(name):
            return self.verb(name)
        raise AttributeError(f"pipelines.{self.name} has no attribute {name!r}")

    def __dir__(self):
        return sorted({*super().__dir__(), *self.domain.verbs()})

    def __repr__(self) -> str:
        return f"<deepfield domain {self.name}: {', '.join(self.domain.verbs())}>"


def _one_of(run, model):
    if (run is None) == (model is None):
        raise UserError("give exactly one of --run RUN or --model EXPORT")
    return run


def is_any_verb(name: str) -> bool:
    """A verb some registered domain has (so asking another domain for it is a UserError)."""
    return any(name in get(d).verbs() for d in discover())


@cache
def api_for(name: str) -> DomainAPI:
    return DomainAPI(get(name))
