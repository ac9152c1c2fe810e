"""The domain contract: what every domain (vision, finance, rl, ...) fills in.

Modelled on Model Garden's `base_task.Task` with `task_factory.register_task_cls`, and
on KerasHub's Task, where a concrete task only binds classes. A domain is one subclass
of `Domain`, registered under its name in `DOMAINS`:

- metadata as class attributes (name, tasks, config class, accepted data specs, extra
  verbs and their options, tour legs). Importing it must not import TensorFlow, so the
  CLI builds its groups and rejects bad input before TensorFlow's start-up;
- the verbs as methods (`train`, `evaluate`, `predict`, `explain`, `serving_spec` and
  any extra verb), which import their TensorFlow modules inside the method.

`pipelines` generates the CLI groups, the `pipelines.<domain>` Python API, `Run`'s
verbs, the tour and the notebook tests from the registry; no file outside a domain's
package names a domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from shared.config import ConfigModel
from shared.errors import UserError
from shared.registry import Registry

if TYPE_CHECKING:  # imported for annotations only: both import TensorFlow
    from shared.export import ServingSpec
    from shared.run_dir import RunDir

DOMAINS = Registry("domain")
# Every spec kind DESIGN.md names; a domain accepts a subset.
SPEC_KINDS = (
    "builtin",
    "tfds",
    "folder",
    "csv",
    "jsonl",
    "text",
    "txt",
    "npz",
    "idx",
    "dicom",
    "nifti",
    "nrrd",
    "kitti",
    "yolo",
    "gym",
)
# `tune` searches configs by training trials (pipelines.tune): every domain that trains has it.
# `compress` prunes, quantizes or distils a finished run into a new one (pipelines.compress);
# every domain that trains has the verb, and it refuses what `compress_methods` leaves out.
CORE_VERBS = ("train", "evaluate", "predict", "explain", "export", "tune", "compress")
STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
# Specs whose rest is a local path; its absence is caught before TensorFlow loads.
PATH_SPECS = frozenset(SPEC_KINDS) - {"builtin", "tfds", "gym"}


@dataclass(frozen=True)
class Option:
    """An extra option of one verb: `--flag` on the CLI, `dest=` in Python."""

    flag: str
    dest: str
    type: str = "str"  # str, int, float, path, flag, or choice (with `choices`)
    help: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    min: int | None = None


def tflite_export_options(
    quantize_modes: tuple[str, ...], format_help: str = "saved_model (TF Serving) or tflite"
) -> tuple[Option, Option]:
    """`export --format saved_model|tflite` and `--quantize MODE`, for the domains that
    implement `Domain.export_tflite` (`Domain.export` dispatches on them)."""
    return (
        Option(
            "--format", "format", "choice", format_help, "saved_model", ("saved_model", "tflite")
        ),
        Option(
            "--quantize",
            "quantize",
            "choice",
            "TFLite post-training quantization",
            "none",
            quantize_modes,
        ),
    )


@dataclass(frozen=True)
class Verb:
    """A verb a domain adds to the common ones (`rl play`, `finance monitor`).

    It runs on a finished run (`--run RUN`), unless `needs_run` is false (a verb that
    makes data, such as `driving simulate`). Its method on the domain is called with
    (run, config, **options) or, without a run, with (**options).
    """

    name: str
    help: str
    options: tuple[Option, ...] = ()
    needs_run: bool = True
    inputs: bool = False  # takes positional INPUTS...


@dataclass(frozen=True)
class TourLeg:
    """One leg of `deepfield tour`: a named config trained on embedded data."""

    name: str
    description: str
    headline: str  # the metric the summary shows first
    target: float | None  # what the leg must reach in a full (not --quick) tour
    config: str
    task: str | None = None
    data: str | None = None
    overrides: tuple[str, ...] = ()  # always applied
    quick: tuple[str, ...] = ()  # applied in --quick mode
    full: tuple[str, ...] = ()  # applied in a full tour


@dataclass(frozen=True)
class SmokeRun:
    """The smallest run that still writes every file of the run directory.

    The shared test harness (tests/harness) trains it once per session for every
    registered domain and checks the contract on it; `resume` makes it long enough to be
    killed between its first checkpoint and its end (the resume-after-SIGKILL check).
    """

    config: str | None = None
    overrides: tuple[str, ...] = ()
    task: str | None = None
    data: str | None = None
    resume: tuple[str, ...] = ("train.epochs=12",)
    progress: str = "epoch"  # the history.csv column that counts progress


class Domain:
    """Base class of every domain. Subclasses set the metadata and implement the verbs."""

    # === Metadata (no TensorFlow) ===
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]]
    config_class: ClassVar[type[ConfigModel]]
    data_specs: ClassVar[tuple[str, ...]]  # spec kinds accepted, e.g. ("builtin", "folder")
    # A task's named config when --config is not given ("default" otherwise).
    task_configs: ClassVar[dict[str, str]] = {}
    # Keys whose values, when a command without --config changes them from the default
    # config's, pick the named config made for them (rl: agent and environment).
    preset_keys: ClassVar[tuple[str, ...]] = ()
    # Python keyword shortcuts of `train` beyond the common ones: kwarg -> config key.
    train_shortcuts: ClassVar[dict[str, str]] = {}
    # Extra options of the common verbs (`vision train --init-from`), by verb.
    verb_options: ClassVar[dict[str, tuple[Option, ...]]] = {}
    extra_verbs: ClassVar[tuple[Verb, ...]] = ()
    tour_legs: ClassVar[tuple[TourLeg, ...]] = ()
    # The harness's tiny run (default: the first tour leg in quick mode, else "default").
    smoke_run: ClassVar[SmokeRun | None] = None
    order: ClassVar[int] = 100  # position in listings and the tour
    # Strategies this domain's `train` runs under (checked before TensorFlow loads).
    strategies: ClassVar[tuple[str, ...]] = STRATEGIES
    strategies_note: ClassVar[str] = ""  # why some strategies are not offered
    # The module whose functions the common verbs call (imported inside the verb, so
    # with its TensorFlow): train(config, run), evaluate(run, config, *, source, split,
    # out), predict(run, config, inputs), explain(run, config, inputs, out). A domain
    # binds it, as a KerasHub task binds its backbone, and lists the verbs it provides.
    # A domain with several tasks maps each (`config.task`) to its module.
    task_module: ClassVar[str | dict[str, str] | None] = None
    task_verbs: ClassVar[tuple[str, ...]] = ("train", "evaluate", "predict", "explain")
    # What `compress` does to each task's runs (a task not listed is refused): "prune"
    # and "distill" fine-tune, so they need a task trained through
    # shared.training.trainer.fit (where their callbacks go in); "distill" also needs one
    # output of class probabilities or logits (per example or token), which its loss
    # matches; "quantize" needs only the saved model.
    compress_methods: ClassVar[dict[str, tuple[str, ...]]] = {}
    notebook: ClassVar[str | None] = None  # notebooks/<name>.ipynb by default
    # The run folder the notebook trains under DEEPFIELD_RUNS (checked by the tests).
    notebook_run: ClassVar[str | None] = None

    # === What the domain offers ===
    @classmethod
    def verbs(cls) -> list[str]:
        """The verbs this domain has: the common ones it implements, then its own."""
        own = [v for v in CORE_VERBS if cls.implements(v)]
        return own + [v.name for v in cls.extra_verbs]

    @classmethod
    def implements(cls, verb: str) -> bool:
        if verb == "export":
            return cls.implements("serving_spec") or cls.export is not Domain.export
        if verb in ("tune", "compress"):
            return cls.implements("train")
        if cls.task_module is not None and verb in cls.task_verbs:
            return True
        method = getattr(cls, verb, None)
        return method is not None and method is not getattr(Domain, verb, None)

    def task(self, config: Any = None):
        """The task module of `config.task` (`task_module`), imported on first use."""
        import importlib

        module = self.task_module
        if module is None:
            raise NotImplementedError(f"{self.name} binds no task_module")
        if isinstance(module, dict):
            task = getattr(config, "task", None)
            if task not in module:
                raise UserError(f"{self.name} has no task {task!r}; its tasks: {', '.join(module)}")
            module = module[task]
        return importlib.import_module(module)

    @classmethod
    def extra_verb(cls, name: str) -> Verb | None:
        return next((v for v in cls.extra_verbs if v.name == name), None)

    def require_verb(self, verb: str) -> None:
        """A verb this domain lacks is a UserError that names the verbs it has."""
        if verb not in self.verbs():
            raise UserError(
                f"{self.name} has no verb {verb!r}; its verbs: {', '.join(self.verbs())}"
            )

    @classmethod
    def package_dir(cls) -> Path:
        import importlib

        return Path(importlib.import_module(cls.__module__).__file__).parent

    # === Checks before TensorFlow ===
    def check(self, config: Any) -> None:
        """Refuse what can be refused before TensorFlow loads; domains add their own."""
        runtime = getattr(config, "runtime", None)
        strategy = getattr(runtime, "strategy", None)
        if strategy is not None and strategy not in self.strategies:
            why = f" ({self.strategies_note})" if self.strategies_note else ""
            raise UserError(
                f"{self.name} does not train with --strategy {strategy}{why}; "
                f"use {', '.join(self.strategies)}"
            )
        source = getattr(getattr(config, "data", None), "source", None)
        if source:
            self.check_data_spec(source)

    def check_data_spec(self, source: str) -> tuple[str, str]:
        """A spec of a kind this domain reads, whose local path (if any) exists."""
        if ":" in source and source.split(":", 1)[0] in SPEC_KINDS:
            kind = source.split(":", 1)[0]
            if kind not in self.data_specs:
                raise UserError(
                    f"{self.name} does not read {kind}: data; it reads "
                    f"{', '.join(k + ':' for k in self.data_specs)} (got --data {source})"
                )
        from shared.data.spec import parse_spec

        kind, rest = parse_spec(source, self.data_specs)
        if kind in PATH_SPECS:
            path = Path(rest).expanduser()
            if not path.exists():
                raise UserError(f"--data {source}: {path} does not exist")
        return kind, rest

    def check_run(self, run: RunDir, config: Any) -> None:
        """Refuse a finished run this domain cannot serve a verb for (default: none)."""

    # === The data a run trains on ===
    def load_data(self, config: Any) -> Any:
        """The data `train` would read for `config`, split as `train` splits it (the
        domain's own loader, seed and splitter), as the domain's data object; a domain
        without a data set (rl: an agent learns from its environment) says so."""
        raise UserError(f"{self.name} has no data set to load")

    # === The verbs (TensorFlow inside) ===
    def train(self, config: Any, run: RunDir) -> dict[str, Any]:
        """Train into `run` and evaluate; returns the metrics written to metrics.json."""
        return self.task(config).train(config, run)

    def evaluate(
        self, run: RunDir, config: Any, data: str | None, split: str, out: Path | None, **options
    ) -> dict[str, Any]:
        """Metrics of a finished run on a split of its data or of `data`."""
        return self.task(config).evaluate(run, config, source=data, split=split, out=out)

    def predict(self, run: RunDir, config: Any, inputs: list[str], **options) -> list[dict]:
        """One JSON-able dict per input."""
        return self.task(config).predict(run, config, inputs)

    def explain(self, run: RunDir, config: Any, inputs: list[str], out: Path | None) -> Path:
        """An explanation plot for the inputs (or held-out examples); returns its path."""
        return self.task(config).explain(run, config, inputs, out)

    def serving_spec(self, run: RunDir, config: Any) -> ServingSpec:
        """The SavedModel's module, signatures, warmup and metadata (see shared.export)."""
        raise NotImplementedError

    def export_name(self, run: RunDir, config: Any) -> str:
        return f"{self.name}_{getattr(config, 'task', self.name)}"

    def export(
        self,
        run: RunDir,
        config: Any,
        to: Path,
        name: str,
        version: int | None,
        overwrite: bool,
        base_path: str = "/models",
        **options,
    ):
        """The one export path: `serving_spec` turned into `to/name/version`; with
        `format="tflite"` (domains that declare the option) `export_tflite` instead."""
        from shared.export import export_saved_model

        fmt, quantize = options.get("format") or "saved_model", options.get("quantize") or "none"
        if fmt == "tflite":
            return self.export_tflite(run, config, Path(to), name, quantize, overwrite)
        if fmt != "saved_model":
            raise UserError(f"unknown export format {fmt!r}; use saved_model or tflite")
        if quantize != "none":
            raise UserError("--quantize applies to --format tflite only")
        return export_saved_model(
            self.serving_spec(run, config),
            to,
            name,
            version=version,
            overwrite=overwrite,
            base_path=base_path,
        )

    def export_tflite(
        self, run: RunDir, config: Any, to: Path, name: str, quantize: str, overwrite: bool
    ) -> dict[str, Any]:
        """`to/name.tflite` and its report (domains with a TFLite export override this)."""
        raise UserError(f"{self.name} exports TF Serving SavedModels only (no --format tflite)")

    # Exported models (`evaluate --model`, `predict --model`): domains that support them.
    def evaluate_exported(
        self, model: Path, data: str | None, split: str, out: Path | None
    ) -> dict[str, Any]:
        raise UserError(f"{self.name} evaluates runs only (--run RUN), not exports (--model)")

    def predict_exported(self, model: Path, inputs: list[str]) -> list[dict]:
        raise UserError(f"{self.name} predicts from runs only (--run RUN), not exports (--model)")

    def format_result(self, verb: str, result: Any) -> str | None:
        """How the CLI prints a result of an extra verb (None: as one JSON object)."""
        return None

    def card_sections(self, run: RunDir, config: Any) -> dict[str, Any]:
        """Extra model-card facts of a run (default: none)."""
        return {}


def register_domain(cls: type[Domain]) -> type[Domain]:
    """Class decorator: register a domain under its `name`."""
    missing = [a for a in ("name", "tasks", "config_class", "data_specs") if not hasattr(cls, a)]
    if missing:
        raise TypeError(f"domain {cls.__name__} does not set {', '.join(missing)}")
    DOMAINS.register(cls.name, cls)
    return cls


__all__ = [
    "CORE_VERBS",
    "DOMAINS",
    "Domain",
    "Option",
    "SmokeRun",
    "TourLeg",
    "Verb",
    "register_domain",
    "tflite_export_options",
]
