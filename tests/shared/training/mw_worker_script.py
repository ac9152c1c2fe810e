"""A tiny seeded training run, used by test_distributed_loop as a multi-worker worker.

    python mw_worker_script.py RUN_DIR OUT_JSON [--strategy multi-worker|default]

Run by `launch_local_workers` (TF_CONFIG set: MultiWorkerMirroredStrategy) or on its
own with `--strategy default` as the single-worker reference. Both train the same model
from the same seed on the same data in the same order at the same GLOBAL batch size, so
their losses must agree. The chief writes OUT_JSON with the final logs and a weight
checksum; every worker writes OUT_JSON.worker-<i> with what it saw, so the test can
tell that non-chief workers ran, and ran in step, without touching the run directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo, when run as a file

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from shared.distribute import configure_devices, is_chief, select_strategy, worker_index  # noqa: E402
from shared.run_dir import RunDir  # noqa: E402
from shared.training.distributed_loop import fit_distributed  # noqa: E402
from shared.training.settings import RuntimeConfig, TrainConfig  # noqa: E402

GLOBAL_BATCH = 16
EXAMPLES = 100  # not a multiple of 16: the last global batch (4) is split 2 + 2
SEED = 7


def datasets() -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Fixed synthetic 3-class data, unshuffled so every run sees the same order."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(EXAMPLES, 6)).astype("float32")
    y = (np.argmax(x[:, :3] + 0.3 * x[:, 3:], axis=1)).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((x[:80], y[:80])).batch(GLOBAL_BATCH)
    val = tf.data.Dataset.from_tensor_slices((x[80:], y[80:])).batch(GLOBAL_BATCH)
    return train, val


def build_model() -> keras.Model:
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    # Plain SGD, not Adam: Adam normalises the gradient's scale away, so it would hide a
    # loss scaled by the wrong batch size; SGD's steps are proportional to it.
    model.compile(
        keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def train(run_dir: Path, strategy_name: str, epochs: int) -> dict:
    """Train on `strategy_name` into `run_dir`; returns what this worker saw."""
    runtime = RuntimeConfig(strategy=strategy_name, seed=SEED)
    configure_devices(runtime)
    # Before any other TF work: MultiWorkerMirroredStrategy needs a fresh runtime.
    strategy = select_strategy(runtime)
    run = RunDir(run_dir)
    if is_chief():
        run.prepare()
    train_ds, val_ds = datasets()
    with strategy.scope():
        model = build_model()
    history = fit_distributed(
        model,
        train_ds,
        val_ds,
        strategy=strategy,
        run=run,
        train=TrainConfig(epochs=epochs, batch_size=GLOBAL_BATCH),
        verbose=0,
    )
    return {
        "worker": worker_index(),
        "chief": is_chief(),
        "replicas": strategy.num_replicas_in_sync,
        "epochs_run": history.epoch,
        "history": history.history,
        "weight_sum": float(sum(np.abs(w).sum() for w in model.get_weights())),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--strategy", default="multi-worker")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    report = train(args.run_dir, args.strategy, args.epochs)
    Path(f"{args.out}.worker-{report['worker']}").write_text(json.dumps(report))
    if report["chief"]:
        args.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
