"""What the benchmarks share: timers, synthetic data, the machine description and records.

Timings on a shared machine are noisy, so the helpers return every sample and the
benchmarks report medians of interleaved runs rather than single measurements.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# CPU features that decide which precisions and kernels are fast; named in `machine()`.
_NOTABLE_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "avx2")


# --------------------------------------------------------------------------- timing


def median(samples: Iterable[float]) -> float:
    """Median of the samples (the statistic every benchmark reports: robust to noise)."""
    return float(statistics.median(list(samples)))


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training step (data fetch included: Keras fetches in the step).

    With `budget_s`, training stops after the step that passes the budget, so a slow
    configuration (XLA on CPU) cannot blow the benchmark's time limit.
    """

    def __init__(self, budget_s: float | None = None):
        super().__init__()
        self.budget_s = budget_s
        self.times: list[float] = []
        self._fit_start = 0.0
        self._step_start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._fit_start = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.times.append(now - self._step_start)
        if self.budget_s is not None and now - self._fit_start > self.budget_s:
            self.model.stop_training = True


def train_steps(
    model: keras.Model, data: tf.data.Dataset, steps: int, budget_s: float | None = None
) -> list[float]:
    """Seconds of each of up to `steps` training steps of a compiled model on `data`."""
    timer = StepTimer(budget_s)
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0, shuffle=False)
    return timer.times


def warm_up(model: keras.Model, data: tf.data.Dataset, steps: int = 1) -> None:
    """Two short untimed fits: the first traces the train step; the second absorbs the one
    retrace Keras's per-iterator wrapper does when `fit` is next called with a new iterator."""
    train_steps(model, data, steps)
    train_steps(model, data, 1)


def without_autotune(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data autotuning off, for in-memory benchmark data with nothing to tune.

    In TF 2.21 destroying an autotuned iterator (as every `fit` does on return) can block
    until the autotune thread's next wake-up, and its period doubles from 10 ms, so a fit
    ending at 6.1 s returns at 10.23 s. That stall would land at random on either side of
    a comparison; the data pipeline benchmark measures it instead.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def synthetic_batches(
    batch_size: int, image_shape: tuple[int, int, int], num_classes: int, seed: int = 0
) -> tf.data.Dataset:
    """One fixed batch of random 0..255 float32 images and int labels, repeated forever.

    Input cost is then negligible, so training benchmarks time the model alone.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch_size, *image_shape)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch_size).astype(np.int32)
    return without_autotune(tf.data.Dataset.from_tensors((images, labels)).repeat())


# --------------------------------------------------------------------------- records


@cache
def machine() -> str:
    """Short CPU description, e.g. "Intel(R) Xeon(R) Processor, 2 cores, avx512f+amx_bf16"."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    notable = "+".join(f for f in _NOTABLE_FLAGS if f in flags)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores" + (f", {notable}" if notable else "")


def record(
    benchmark: str, *, ratio: float | None, target: float | None, **fields: Any
) -> dict[str, Any]:
    """One result line: identity, measured `fields`, then ratio, target and meets_target.

    `meets_target` is None when the benchmark has no target (it only informs a choice).
    Floats are rounded to 4 significant digits: the noise is far larger than that.
    """
    meets = None if target is None or ratio is None else bool(ratio >= target)
    return _rounded(
        {
            "benchmark": benchmark,
            "machine": machine(),
            "tf": tf.__version__,
            "keras": keras.__version__,
            **fields,
            "ratio": ratio,
            "target": target,
            "meets_target": meets,
        }
    )


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records to a JSON-lines file, one object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for rec in records:
            handle.write(json.dumps(rec) + "\n")


def save_records(name: str, records: list[dict[str, Any]]) -> Path:
    """A benchmark run on its own: its records appended to a new
    `benchmarks/results/<UTC time>-<name>.jsonl` and printed, one JSON line each."""
    from datetime import UTC, datetime

    out = RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{name}.jsonl"
    append_jsonl(out, records)
    for rec in records:
        print(json.dumps(rec), flush=True)
    print(f"results appended to {out}", file=sys.stderr)
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def results_file(name: str) -> Path:
    """`benchmarks/results/<UTC time>-<name>.jsonl`: where a benchmark run on its own
    appends its records as they come (`emit`), so a stopped run keeps what it finished."""
    from datetime import UTC, datetime

    return RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{name}.jsonl"


def emit(out: Path | None, rec: dict[str, Any]) -> None:
    """Append one record to `out` and print it as a JSON line (None: neither, as under
    `run_all`, which prints and saves the records a benchmark's `run` returns)."""
    if out is not None:
        append_jsonl(out, [rec])
        print(json.dumps(rec), flush=True)
