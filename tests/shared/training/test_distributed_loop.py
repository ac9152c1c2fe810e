"""The custom distributed loop: same numbers and files as `fit`, resume, non-chief
workers, and two real localhost workers against a single-worker run."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import keras
import mw_worker_script
import numpy as np
import pytest
import tensorflow as tf

from shared.local_workers import launch_local_workers
from shared.run_dir import RunDir
from shared.training import trainer
from shared.training.distributed_loop import fit_distributed
from shared.training.settings import TrainConfig

HERE = Path(__file__).resolve().parent

# Keras' own weight-saving code calls np.array(variable), which NumPy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
TRAIN = TrainConfig(epochs=2, batch_size=16)


def data() -> tuple[tf.data.Dataset, tf.data.Dataset]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(72, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    # 60 = 3 x 16 + 12: a short last batch, as real data has.
    train = tf.data.Dataset.from_tensor_slices((x[:60], y[:60])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[60:], y[60:])).batch(16)
    return train, val


def model() -> keras.Model:
    """A tiny seeded classifier with a weight regulariser (so model.losses counts too)."""
    keras.utils.set_random_seed(1)
    net = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3)
            ),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    net.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return net


def new_run(path: Path) -> RunDir:
    run = RunDir(path)
    run.prepare()
    return run


def loop(net: keras.Model, run: RunDir, epochs: int) -> keras.callbacks.History:
    train_ds, val_ds = data()
    return fit_distributed(
        net,
        train_ds,
        val_ds,
        strategy=tf.distribute.get_strategy(),
        run=run,
        train=TRAIN,
        epochs=epochs,
        verbose=0,
    )


def epochs_in(run: RunDir) -> list[int]:
    return [int(row["epoch"]) for row in trainer.history_rows(run.history_path)]


def checkpoint_epoch(run: RunDir) -> int:
    return json.loads((run.checkpoints / "training_metadata.json").read_text())["epoch"]


def test_same_losses_and_files_as_keras_fit(tmp_path):
    fit_run, loop_run = new_run(tmp_path / "fit"), new_run(tmp_path / "loop")
    train_ds, val_ds = data()
    fitted = trainer.fit(model(), train_ds, val_ds, run=fit_run, train=TRAIN, verbose=0)
    looped = loop(model(), loop_run, epochs=2)

    assert set(looped.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for name in fitted.history:
        assert looped.history[name] == pytest.approx(fitted.history[name], rel=1e-5), name
    assert looped.epoch == fitted.epoch == [0, 1]
    for run in (fit_run, loop_run):
        assert epochs_in(run) == [0, 1]
        assert (run.checkpoints / "epoch-0002.npz").is_file()
        assert checkpoint_epoch(run) == 2
        assert any(run.tensorboard.rglob("events.out.tfevents.*"))
    # history.csv has the same columns and values either way.
    fit_rows = trainer.history_rows(fit_run.history_path)
    loop_rows = trainer.history_rows(loop_run.history_path)
    assert [row.keys() for row in loop_rows] == [row.keys() for row in fit_rows]
    for loop_row, fit_row in zip(loop_rows, fit_rows, strict=True):
        assert loop_row == pytest.approx(fit_row, rel=1e-5)


def test_resume_continues_after_the_last_finished_epoch(tmp_path):
    whole = loop(model(), new_run(tmp_path / "whole"), epochs=2)

    run = new_run(tmp_path / "resumed")
    first = loop(model(), run, epochs=1)  # "killed" after epoch 1
    assert first.epoch == [0] and checkpoint_epoch(run) == 1
    second = loop(model(), run, epochs=2)  # a fresh process would build a fresh model

    assert second.epoch == [1]
    assert epochs_in(run) == [0, 1]
    # Weights and optimizer state came back: epoch 2 is the uninterrupted run's epoch 2.
    assert second.history["loss"][0] == pytest.approx(whole.history["loss"][1], rel=1e-5)
    assert second.history["val_loss"][0] == pytest.approx(whole.history["val_loss"][1], rel=1e-5)


def test_a_non_chief_worker_resumes_from_the_chief_but_writes_nothing(tmp_path, monkeypatch):
    run = new_run(tmp_path / "run")
    loop(model(), run, epochs=1)
    before = {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()}

    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_parent))
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    history = loop(model(), run, epochs=2)

    assert history.epoch == [1]  # restored the chief's checkpoint, epoch 1 done
    after = {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()}
    assert after == before  # not one file of the run directory was written
    assert list(scratch_parent.iterdir()) == []  # its scratch directory is gone


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_extra_callbacks_run_and_stop_training_is_honoured(tmp_path):
    run = new_run(tmp_path / "run")
    train_ds, val_ds = data()
    history = fit_distributed(
        model(),
        train_ds,
        val_ds,
        strategy=tf.distribute.get_strategy(),
        run=run,
        train=TRAIN,
        extra_callbacks=[StopAfterFirstEpoch()],
        epochs=3,
        verbose=0,
    )
    assert history.epoch == [0]
    assert epochs_in(run) == [0] and checkpoint_epoch(run) == 1


def test_model_built_outside_the_strategy_scope_is_refused(tmp_path):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    train_ds, _ = data()
    with pytest.raises(ValueError, match="strategy.scope"):
        fit_distributed(
            model(), train_ds, None, strategy=strategy, run=new_run(tmp_path), train=TRAIN
        )


def test_steps_per_epoch_carries_the_iterator_across_epochs(tmp_path):
    run = new_run(tmp_path / "run")
    train_ds, _ = data()  # 4 batches
    net = model()
    history = fit_distributed(
        net,
        train_ds,
        None,
        strategy=tf.distribute.get_strategy(),
        run=run,
        train=TRAIN,
        epochs=3,
        steps_per_epoch=2,
        verbose=0,
    )
    assert history.epoch == [0, 1, 2]
    # 2 steps per epoch over 3 epochs: the 4-batch dataset was restarted once, not per epoch.
    assert int(net.optimizer.iterations.numpy()) == 6
    assert "val_loss" not in history.history


def test_two_local_workers_match_one_worker(tmp_path, monkeypatch):
    """Two MultiWorkerMirroredStrategy workers vs one worker: same global batches, same loss.

    Each global batch of 16 is split 8 + 8 between the workers (2 + 2 for the short last
    batch), and the loop divides each worker's loss sum by the global count, so the two
    runs compute the same gradients; only the order of floating-point additions differs
    (two partial sums and an all-reduce instead of one sum), worth ~1e-7 relative per step.
    rel=1e-4 leaves room for that to grow over 15 SGD steps while catching real errors: a
    gradient scaled by the replica count, duplicated or missing examples, or unsynced
    weights all move the loss by 1e-2 or more here (plain SGD, see mw_worker_script).
    """
    reference = mw_worker_script.train(tmp_path / "single", "default", epochs=3)

    run_dir, out = tmp_path / "multi", tmp_path / "multi.json"
    scratch = tmp_path / "worker-tmp"
    scratch.mkdir()
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch)}
    monkeypatch.delenv("TF_CONFIG", raising=False)  # the workers get their own
    code = launch_local_workers(
        [sys.executable, str(HERE / "mw_worker_script.py"), str(run_dir), str(out)],
        2,
        env=env,
        log_dir=tmp_path / "logs",
    )
    assert code == 0, (tmp_path / "logs" / "worker-1.log").read_text()[-3000:]
    chief = json.loads(out.read_text())
    other = json.loads(Path(f"{out}.worker-1").read_text())

    assert chief["replicas"] == other["replicas"] == 2 and reference["replicas"] == 1
    assert chief["epochs_run"] == reference["epochs_run"] == [0, 1, 2]
    for name, values in reference["history"].items():
        assert chief["history"][name] == pytest.approx(values, rel=1e-4), name
    assert chief["weight_sum"] == pytest.approx(reference["weight_sum"], rel=1e-4)
    # Worker 1 trained in step (same logs, same weights) but wrote no run directory.
    assert other["history"] == chief["history"]
    assert other["weight_sum"] == chief["weight_sum"]
    run = RunDir(run_dir)
    assert epochs_in(run) == [0, 1, 2]  # one writer: a second would have appended 3 more
    assert checkpoint_epoch(run) == 3
    assert sorted(p.name for p in run.path.iterdir()) == [
        "checkpoints",
        "history.csv",
        "plots",
        "tensorboard",
    ]
    assert list(scratch.iterdir()) == []  # worker 1's scratch run directory was removed
