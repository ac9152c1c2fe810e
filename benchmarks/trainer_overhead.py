"""Trainer overhead: `shared.training.trainer.fit` vs plain `model.fit` without callbacks.

Same compiled model, same in-memory data and batch. The trainer writes a real run
directory (history CSV, TensorBoard events, resume checkpoints every epoch),
so the ratio prices what those callbacks cost per step. Each fit's whole wall time counts
(its set-up and per-epoch checkpoint writes included), after one untimed fit of each kind
has traced the train step and opened the writers once.

The trainer's cost is mostly per epoch (a checkpoint write), so the ratio depends on the
epoch length chosen here (25 steps of 64 images, about 3-4 s on 2 cores, far shorter
than a real epoch); `overhead_ms_per_epoch` is the number that carries over to other
epoch lengths. `ratio_best` uses the fastest fit of each kind (noise only adds time) and
`ratio_cpu_time` the process CPU seconds, which other tenants of the machine disturb less.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from benchmarks.common import median, record, without_autotune
from shared.run_dir import RunDir
from shared.training.settings import TrainConfig
from shared.training.trainer import fit
from shared.zoo import build_model

NAME = "trainer_overhead"
TARGET = 0.97  # trainer steps/s over plain fit's
MODEL = "small_cnn"
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
BATCH_SIZE = 64


def make_data(steps: int, seed: int = 0) -> tf.data.Dataset:
    """`steps` distinct batches of random images, cached in memory and repeated.

    Autotuning is off (see `without_autotune`): otherwise each fit's return can stall until
    a tf.data autotune tick, hitting plain and trainer fits at random.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (steps * BATCH_SIZE, *IMAGE_SHAPE)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, steps * BATCH_SIZE).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH_SIZE)
    return without_autotune(ds.cache().repeat().prefetch(2))


def run(quick: bool) -> list[dict]:
    """Alternate plain and trainer fits (ABBA order); ratio of median steps/s."""
    epochs, steps, rounds = (2, 3, 1) if quick else (2, 25, 3)
    keras.utils.set_random_seed(0)
    model = build_model(MODEL, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False,
    )
    data = make_data(steps)
    config = TrainConfig(epochs=epochs, batch_size=BATCH_SIZE, optimizer="sgd")

    with tempfile.TemporaryDirectory(prefix="deepfield-bench-runs-") as tmp:
        runs = itertools.count()

        def plain_fit(num_epochs: int) -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            model.fit(data, epochs=num_epochs, steps_per_epoch=steps, callbacks=[], verbose=0)
            return time.perf_counter() - start, time.process_time() - cpu

        def trainer_fit(num_epochs: int) -> tuple[float, float]:
            # A fresh run directory each time: an old one would make the trainer resume.
            run_dir = RunDir(Path(tmp) / f"run{next(runs)}")
            run_dir.prepare()
            start, cpu = time.perf_counter(), time.process_time()
            fit(
                model,
                data,
                None,
                run=run_dir,
                train=config,
                epochs=num_epochs,
                steps_per_epoch=steps,
                verbose=0,
            )
            return time.perf_counter() - start, time.process_time() - cpu

        plain_fit(1)  # warm-up: traces the train step
        trainer_fit(1)  # warm-up: first TensorBoard writer, first checkpoint write
        plain, trainer = [], []  # (wall, cpu) seconds of each fit
        for _ in range(rounds):
            plain.append(plain_fit(epochs))
            trainer.append(trainer_fit(epochs))
            trainer.append(trainer_fit(epochs))
            plain.append(plain_fit(epochs))
    plain_s, plain_cpu = [w for w, _ in plain], [c for _, c in plain]
    trainer_s, trainer_cpu = [w for w, _ in trainer], [c for _, c in trainer]

    total_steps = epochs * steps
    plain_sps = total_steps / median(plain_s)
    trainer_sps = total_steps / median(trainer_s)
    return [
        record(
            NAME,
            quick=quick,
            model=MODEL,
            image_shape=list(IMAGE_SHAPE),
            batch_size=BATCH_SIZE,
            epochs_per_fit=epochs,
            steps_per_epoch=steps,
            fits_each=len(plain_s),
            plain_steps_per_s=plain_sps,
            trainer_steps_per_s=trainer_sps,
            overhead_ms_per_epoch=1000 * (median(trainer_s) - median(plain_s)) / epochs,
            ratio_best=min(plain_s) / min(trainer_s),
            ratio_cpu_time=median(plain_cpu) / median(trainer_cpu),
            plain_fit_seconds=plain_s,
            trainer_fit_seconds=trainer_s,
            plain_fit_cpu_seconds=plain_cpu,
            trainer_fit_cpu_seconds=trainer_cpu,
            ratio=trainer_sps / plain_sps,
            target=TARGET,
        )
    ]
