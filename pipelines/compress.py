"""`deepfield <domain> compress`: a finished run pruned, quantized or distilled into a new run.

The new run has the layout of any run of its domain (config.yaml, metrics.json,
history.csv, model.keras, plots, MODEL_CARD.md), so `evaluate`, `predict` and `export`
work on it unchanged. It is made by the domain's own training, with callbacks added to
its `fit` (shared.training.trainer.added_callbacks):

- pruning fine-tunes the run's weights (`StartFrom`) for `epochs` with the magnitude
  pruning callback (shared.compression.pruning), then checks the saved kernels' zeros;
- distillation trains a student (`--student`, `--set model.*`; default: the run's
  architecture at a quarter of its width) on the run's data with the teacher's softened
  outputs mixed into its loss (shared.compression.distillation);
- quantization (Keras's `model.quantize`) applies to the result, or to a copy of the
  run when nothing trains, and the quantized model is re-evaluated.

Then the original and the compressed model are measured the same way (zipped size,
parameters, non-zero parameters, batch-1 latency) beside the task's headline metric,
into metrics.json, compression.json and a section of the model card.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import runner
from pipelines.compress_report import RECORD, append_card
from pipelines.run import Run
from shared.compression import QUANTIZE_MODES
from shared.config import apply_overrides, to_plain, validate
from shared.errors import UserError
from shared.run_dir import RunDir, write_json

LOG = logging.getLogger("deepfield.compress")
# Files of the source run a quantize-only run does not copy: its own, or the source's history.
NOT_COPIED = ("checkpoints", "tensorboard", "status.json", "config.yaml", "log.txt", "trials")
NOT_COPIED += ("tracking.json", RECORD)
WIDTH_LISTS = ("filters", "hidden")
WIDTHS = ("width", "units", "embedding_dim", "fc_units")
FIGURES = ("size_bytes", "parameters", "nonzero_parameters", "sparsity", "latency_ms")


@dataclass
class Compression:
    """A checked compress request: what to do to which run, into which folder."""

    api: Any  # pipelines.api.DomainAPI
    source: Run
    source_config: Any
    config: Any  # the new run's config
    run_dir: Path
    task: str
    prune: float | None = None
    quantize: str | None = None
    teacher: Run | None = None
    alpha: float = 0.1
    temperature: float = 4.0
    call: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def trains(self) -> bool:
        return self.prune is not None or self.teacher is not None


# === Checks and the new config (before TensorFlow) ===
METHODS = {  # method -> (its option, why a task may lack it)
    "prune": ("--prune", "pruning fine-tunes through the shared Keras trainer"),
    "quantize": (
        "--quantize",
        "Keras quantizes Dense, EinsumDense and Embedding layers, which this model has none of",
    ),
    "distill": (
        "--distill-from",
        "distillation matches a teacher's class probabilities, one output per example "
        "or token, through the shared Keras trainer",
    ),
}


def supported(method: str | None = None) -> list[str]:
    """Every registered `<domain> <task>` compress supports (with `method`, if given)."""
    from pipelines.domains import discover, get

    return [
        f"{name} {task}"
        for name in discover()
        for task, methods in get(name).compress_methods.items()
        if method is None or method in methods
    ]


def plan(
    api,
    run,
    *,
    prune: float | None = None,
    quantize: str | None = None,
    distill_from=None,
    student: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    epochs: int | None = None,
    alpha: float = 0.1,
    temperature: float = 4.0,
    run_dir=None,
    task: str | None = None,
) -> Compression:
    """Check a compress request and make the new run's config; every refusal is a
    UserError raised before any training."""
    if prune is None and quantize is None and distill_from is None:
        raise UserError("nothing to do: give --prune, --quantize and/or --distill-from")
    if prune is not None and not 0 < prune < 1:
        raise UserError(
            f"--prune is the fraction of weights to zero, between 0 and 1 (got {prune})"
        )
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise UserError(f"--quantize {quantize!r}: use {', '.join(QUANTIZE_MODES)}")
    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be at least 1 (got {epochs})")
    if not 0 <= alpha <= 1:
        raise UserError(f"--alpha weights the hard-label loss, between 0 and 1 (got {alpha})")
    if temperature <= 0:
        raise UserError(f"--temperature must be positive (got {temperature})")
    source, source_config = api.open(run, task)
    name = api.name
    task = getattr(source_config, "task", None) or name
    methods = api.domain.compress_methods.get(task, ())
    if not methods:
        raise UserError(
            f"compress does not support {name} {task} runs; it supports: {', '.join(supported())}"
        )
    asked = {"prune": prune, "quantize": quantize, "distill": distill_from}
    for method, value in asked.items():
        if value is not None and method not in methods:
            option, why = METHODS[method]
            hint = tflite_hint(api) if method == "quantize" else ""
            raise UserError(
                f"{option} does not support {name} {task} runs ({why}){hint}; it "
                f"supports: {', '.join(supported(method))}"
            )
    model_keys = [o for o in overrides if o.split("=", 1)[0].strip().startswith("model.")]
    if distill_from is None and (student or model_keys):
        raise UserError(
            "--student and --set model.* choose a student: use them with --distill-from"
        )
    teacher = None
    if distill_from is not None:
        teacher = distill_from if isinstance(distill_from, Run) else Run(distill_from)
        teacher_task = teacher.config.get("task", teacher.domain)
        if teacher.domain != name or teacher_task != task:
            raise UserError(
                f"--distill-from {teacher.path} is a {teacher.domain} {teacher_task} run; "
                f"the teacher must be a {name} {task} run"
            )
    plain = to_plain(source_config)
    notes: list[str] = []
    if teacher is not None:
        plain = student_config(plain, source_config, student, bool(model_keys))
        if epochs is not None:
            plain["train"]["epochs"] = epochs
    elif prune is not None:
        plain = fine_tune_config(plain, epochs)
    plain = apply_overrides(plain, list(overrides))
    config = validate(api.domain.config_class, plain, source=f"{source.path} config with changes")
    if prune is not None or teacher is not None:
        api.domain.check(config)
    path = (
        Path(run_dir)
        if run_dir
        else Path("runs") / name / task / time.strftime("compress-%Y%m%d-%H%M%S")
    )
    if path.resolve() == source.path.resolve():
        raise UserError("--run-dir must be a new folder, not the run being compressed")
    return Compression(
        api,
        source,
        source_config,
        config,
        path,
        task,
        prune=prune,
        quantize=quantize,
        teacher=teacher,
        alpha=alpha,
        temperature=temperature,
        notes=notes,
    )


def fine_tune_config(plain: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    """The run's config for pruning's fine-tuning from its weights: `epochs` (default a
    quarter of the run's, at least 2), no warm-up, no early stopping (its restore of an
    earlier epoch's weights would undo the schedule's last masks), no transfer phases."""
    plain = json.loads(json.dumps(plain))
    train = plain.get("train", {})
    if "epochs" in train:
        train["epochs"] = epochs or max(2, math.ceil(train["epochs"] / 4))
    for key in ("warmup_epochs", "early_stopping_patience"):
        if key in train:
            train[key] = 0
    transfer = plain.get("transfer")
    if isinstance(transfer, dict) and transfer.get("init_from"):
        transfer["init_from"] = None  # the run's own weights are the start
    return _one_process(plain)


def student_config(plain, source_config, student: str | None, has_model_keys: bool):
    """The run's config with the student as its model: `student` at its defaults, or
    (neither a student nor model.* options given) the same model at a quarter width."""
    plain = json.loads(json.dumps(plain))
    model = plain.get("model")
    if not isinstance(model, dict):
        raise UserError("this run's config has no model section to choose a student in")
    if student and student != model.get("name"):
        fields = set(type(source_config.model).model_fields)
        plain["model"] = {k: v for k, v in model.items() if k in fields} | {"name": student}
    elif not student and not has_model_keys:
        options = {k: v for k, v in model.items() if k != "name"}
        zoo_name = model.get("name")
        from shared.zoo import registry

        if zoo_name in registry.MODELS and type(source_config.model).model_config.get("extra"):
            options = {**registry.model_options(zoo_name), **options}
        narrower = quarter_width(options)
        if not narrower:
            raise UserError(
                f"model {zoo_name!r} exposes no width option to narrow; name a smaller "
                "--student or give its options with --set model.KEY=VALUE"
            )
        model.update(narrower)
    return _one_process(plain)


def quarter_width(options: dict[str, Any]) -> dict[str, Any]:
    """The width options (filters, hidden, width, units, *_channels, ...) at a quarter."""
    narrower = {}
    for key, value in options.items():
        if key in WIDTH_LISTS and isinstance(value, list | tuple) and value:
            if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                narrower[key] = [max(1, v // 4) for v in value]
        elif key in WIDTHS or key.endswith("_channels"):
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and value >= 2:
                narrower[key] = max(1, value // 4)
            elif isinstance(value, float) and value > 0:
                narrower[key] = value / 4
    return narrower


def _one_process(plain: dict[str, Any]) -> dict[str, Any]:
    """Compress trains in this process: a multi-worker run's config trains on one."""
    runtime = plain.get("runtime")
    if isinstance(runtime, dict) and runtime.get("strategy") == "multi-worker":
        runtime["strategy"] = "auto"
        runtime["local_workers"] = None
    return plain


# === Running it ===
def run_compression(compression: Compression) -> Run:
    """Make the compressed run (resuming it if the folder holds an unfinished one)."""
    api = compression.api
    finished = runner.execute(
        api.name,
        compression.config,
        compression.run_dir,
        lambda config, run: compress_into(compression, config, run),
        call=compression.call or None,
    )
    return Run(finished.path)


def compress_into(compression: Compression, config, run: RunDir) -> dict[str, Any]:
    """Train (prune, distil) or copy the source run into `run`, quantize, measure, record."""
    from shared import model_io
    from shared.compression import pruning
    from shared.compression.fine_tune import compression_callbacks
    from shared.training.trainer import added_callbacks

    domain, source = compression.api.domain, compression.source
    original = model_io.load_model(source.dir.model_path)
    record: dict[str, Any] = {"source_run": str(source.path), "task": compression.task}
    if compression.trains:
        teacher = (
            model_io.load_model(compression.teacher.dir.model_path) if compression.teacher else None
        )
        make = compression_callbacks(
            start_from=None if teacher is not None else original,
            prune=compression.prune,
            teacher=teacher,
            alpha=compression.alpha,
            temperature=compression.temperature,
        )
        with added_callbacks(make):
            metrics = domain.train(config, run)
    else:
        copy_run(source.dir, run)
        metrics = None
    model = model_io.load_model(run.model_path)
    if compression.prune is not None:
        report = pruning.sparsity_report(model)
        pruning.check_sparsity(report, compression.prune)  # on the saved weights
        record["prune"] = {
            "target": compression.prune,
            "global": report["global"],
            "layers": report["layers"],
            "schedule": "polynomial (power 3) from 0, at the target for the last epoch",
        }
    if compression.teacher is not None:
        record["distill"] = {
            "teacher_run": str(compression.teacher.path),
            "student": getattr(config.model, "name", None),
            "student_options": changed_options(compression.source_config.model, config.model),
            "alpha": compression.alpha,
            "temperature": compression.temperature,
        }
    if compression.quantize is not None:
        record["quantize"] = quantize_run(compression, model, run)
        model = model_io.load_model(run.model_path)  # what users will load, in safe mode
        metrics = None
    if metrics is None:
        metrics = domain.evaluate(run, config, None, "test", None)
    compared = comparison(compression, original, model, metrics, record)
    metrics = {**metrics, **compared}
    run.write_metrics(metrics)
    write_json(run.path / RECORD, record)
    append_card(run, record)
    return metrics


def changed_options(before, after) -> dict[str, Any]:
    """The student's model options that differ from the source run's."""
    old, new = to_plain(before), to_plain(after)
    return {k: v for k, v in new.items() if k != "name" and old.get(k) != v}


def copy_run(source: RunDir, run: RunDir) -> None:
    """The source run's files (model, data splits, input contract, plots, history, ...)
    into `run`, for a compression that trains nothing."""
    for item in source.path.iterdir():
        if item.name in NOT_COPIED or item.name.startswith("."):
            continue
        target = run.path / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    LOG.info("copied %s into %s", source.path, run.path)


def quantize_run(compression: Compression, model, run: RunDir) -> dict[str, Any]:
    """Quantize the run's model with Keras, save it in place; what changed, and a note
    on the weight layers left in float."""
    from shared import model_io
    from shared.compression.quantization import quantize

    report = quantize(model, compression.quantize)
    if not report["changed"]:
        raise UserError(
            f"Keras's {compression.quantize} quantization changed no layer of this model "
            f"(it covers Dense, EinsumDense and Embedding; this model's weight layers: "
            f"{', '.join(report['float']) or 'none'}){tflite_hint(compression.api)}"
        )
    model_io.save_model(model, run.model_path)
    note = ""
    if report["float"]:
        left = report["float"]
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        note = (
            f"{len(left)} weight layer(s) stay float32 ({shown}): Keras quantizes Dense, "
            f"EinsumDense and Embedding only{tflite_hint(compression.api)}"
        )
        LOG.info(note)
    return {"mode": compression.quantize, **report, "note": note}


def tflite_hint(api) -> str:
    """Where a domain's export quantizes convolutions too (a TFLite format), if it has one."""
    for option in api.domain.verb_options.get("export", ()):
        if "tflite" in option.choices:
            return (
                f"; for integer convolutions export with `deepfield {api.name} "
                f"export --run RUN --format tflite --quantize int8`"
            )
    return ""


def comparison(compression, original, model, metrics, record) -> dict[str, Any]:
    """The original's and the compressed model's figures side by side (flat metrics)."""
    from pipelines.runs import headline_metrics
    from shared.compression import pruning
    from shared.compression.measure import figures

    before = figures(original)
    after = figures(model)
    before["sparsity"] = _sparsity(original)
    after["sparsity"] = _sparsity(model)
    source_metrics = compression.source.metrics
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    headline = (headline_metrics(compression.api.name, compression.task, numbers) or [None])[0]
    compared: dict[str, Any] = {}
    for key in FIGURES:
        if after[key] is not None:
            compared[key] = after[key]
        if before[key] is not None:
            compared[f"original_{key}"] = before[key]
    if headline and isinstance(source_metrics.get(headline), int | float):
        compared[f"original_{headline}"] = source_metrics[headline]
    if compression.teacher is not None and headline:
        value = compression.teacher.metrics.get(headline)
        if isinstance(value, int | float):
            compared[f"teacher_{headline}"] = value
    if "prune" in record:
        for path, fraction in record["prune"]["layers"].items():
            compared[f"sparsity_{pruning.metric_name(path)}"] = fraction
    if "quantize" in record:
        compared["quantized_layers"] = len(record["quantize"]["changed"])
        compared["float_weight_layers"] = len(record["quantize"]["float"])
    record["headline"] = headline
    record["original"] = {
        **before,
        **({headline: source_metrics.get(headline)} if headline else {}),
        "split": source_metrics.get("split"),
    }
    record["compressed"] = {**after, **({headline: metrics.get(headline)} if headline else {})}
    return compared


def _sparsity(model) -> float | None:
    from shared.compression.pruning import prunable_kernels, sparsity_report

    return sparsity_report(model)["global"] if prunable_kernels(model) else None
