"""The trainer: Keras `fit` with the run directory's callbacks, resumable after a kill.

Resuming uses `EpochCheckpoint` (weights, optimizer state and the epoch counter in
`checkpoints/`, with Keras's `BackupAndRestore` contract), so rerunning the same command
continues from the last finished epoch. The multi-worker loop (`shared.training.distributed_loop`) reads and
writes the same checkpoints, history and TensorBoard folders.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf

from shared.run_dir import RunDir
from shared.training.checkpoints import METADATA, EpochCheckpoint
from shared.training.settings import RuntimeConfig, TrainConfig

LOG = logging.getLogger("deepfield.trainer")
# Per-epoch lines for log.txt; the console already shows Keras's own progress output.
EPOCH_LOG = logging.getLogger("deepfield.epochs")
# Callback factories every `fit` adds while an `added_callbacks` block runs: how
# `compress` fine-tunes through a domain's own training (pipelines.compress).
_ADDED_CALLBACKS: list = []


@contextlib.contextmanager
def added_callbacks(make) -> Iterator[None]:
    """Within the block, every `fit` also uses the callbacks `make(model)` returns."""
    _ADDED_CALLBACKS.append(make)
    try:
        yield
    finally:
        _ADDED_CALLBACKS.remove(make)


@contextlib.contextmanager
def runtime_scope(train: TrainConfig, runtime: RuntimeConfig) -> Iterator[None]:
    """Seeds, op determinism and the precision policy for one run.

    The precision policy is global in Keras; it is restored on the way out so a
    notebook's next model is not silently built in bfloat16.
    """
    previous = keras.mixed_precision.global_policy().name
    keras.utils.set_random_seed(runtime.seed)
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(train.precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _schedule(train: TrainConfig, steps_per_epoch: int):
    total = max(1, train.epochs * steps_per_epoch)
    warmup = train.warmup_epochs * steps_per_epoch
    lr = train.learning_rate
    if train.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            lr if warmup == 0 else 0.0,
            decay_steps=max(1, total - warmup),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    if train.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(lr, steps_per_epoch, decay_rate=0.9)
    if train.lr_schedule == "step":
        bounds = [int(total * 0.5), int(total * 0.75)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, [lr, lr * 0.1, lr * 0.01])
    return lr


def make_optimizer(train: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimiser with its learning-rate schedule."""
    lr = _schedule(train, steps_per_epoch)
    # Keras swaps the averaged weights in when fit ends (finalize_variable_values).
    ema = {"use_ema": True, "ema_momentum": train.ema} if train.ema else {}
    if train.optimizer == "adam":
        return keras.optimizers.Adam(lr, **ema)
    if train.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=train.weight_decay or 1e-4, **ema)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, nesterov=True, **ema)
    return keras.optimizers.RMSprop(lr, **ema)


def completed_epochs(run: RunDir, checkpoint_dir: Path | None = None) -> int:
    """Epochs already finished according to resume checkpoints (0 for a new run).

    Without `checkpoint_dir`, the latest epoch over every phase's checkpoints (a run
    that trains in phases, like transfer learning, keeps one folder per phase).
    """
    folders = [checkpoint_dir] if checkpoint_dir else [run.checkpoints, *run.checkpoints.glob("*")]
    done = 0
    for folder in folders:
        try:
            meta = json.loads((Path(folder) / METADATA).read_text())
            done = max(done, int(meta["epoch"]))
        except (OSError, ValueError, KeyError):
            continue
    return done


def trim_history(run: RunDir, epochs_done: int) -> None:
    """Drop history rows of epochs that the checkpoint does not cover (killed mid-save)."""
    if not run.history_path.is_file():
        return
    with run.history_path.open() as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epochs_done]
    if len(kept) != len(rows):
        with run.history_path.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept)


class EpochLog(keras.callbacks.Callback):
    """One line per epoch in log.txt, so a run's log tells its story without TensorBoard."""

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{k}={float(v):.4f}" for k, v in (logs or {}).items())
        EPOCH_LOG.info("epoch %d: %s", epoch + 1, shown)


def standard_callbacks(
    run: RunDir,
    train: TrainConfig,
    *,
    monitor: str = "val_loss",
    has_validation: bool = True,
    checkpoint_dir: Path | None = None,
) -> list[keras.callbacks.Callback]:
    """History CSV, TensorBoard, per-epoch checkpoints for resume, early stopping."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.CSVLogger(str(run.history_path), append=True),
        keras.callbacks.TensorBoard(str(run.tensorboard), update_freq="epoch"),
        EpochLog(),
    ]
    if train.early_stopping_patience and has_validation:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=train.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    # Last, so the history row and logs of an epoch exist before its checkpoint does.
    callbacks.append(EpochCheckpoint(checkpoint_dir or run.checkpoints))
    return callbacks


def progress_verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    run: RunDir,
    train: TrainConfig,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    monitor: str = "val_loss",
    verbose: int | None = None,
    initial_epoch: int = 0,
    checkpoint_dir: Path | None = None,
) -> keras.callbacks.History:
    """Fit a compiled model up to epoch `epochs`, resuming from its checkpoints if present.

    `initial_epoch` and `checkpoint_dir` let a run train in phases (for example a frozen
    backbone, then fine-tuning), each phase with its own optimizer state to resume.
    """
    done = completed_epochs(run)
    trim_history(run, done)
    if done > initial_epoch:
        LOG.info("resuming %s after epoch %d", run.path, done)
    callbacks = standard_callbacks(
        run,
        train,
        monitor=monitor,
        has_validation=val_ds is not None,
        checkpoint_dir=checkpoint_dir,
    )
    # EpochCheckpoint sets this when it restores; clear what an earlier phase left.
    model._initial_epoch = None
    added = [callback for make in _ADDED_CALLBACKS for callback in make(model)]
    return model.fit(
        train_ds,
        validation_data=val_ds,
        initial_epoch=initial_epoch,
        epochs=epochs or train.epochs,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        steps_per_epoch=steps_per_epoch or train.steps_per_epoch,
        callbacks=list(extra_callbacks or []) + added + callbacks,
        verbose=progress_verbosity() if verbose is None else verbose,
    )


def history_rows(path: Path) -> list[dict[str, float]]:
    """history.csv as a list of dicts of floats (for plots and the Run object)."""
    if not Path(path).is_file():
        return []
    with Path(path).open() as handle:
        return [
            {k: number for k, v in row.items() if (number := _number(v)) is not None}
            for row in csv.DictReader(handle)
        ]


def _number(text: str) -> float | None:
    """A history cell as a float; None for the blanks and "NA" Keras' CSVLogger writes
    for metrics an epoch did not produce (no validation data, for example)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
