"""MirroredStrategy over two logical CPU devices, in a fresh process (used by test_distribute).

Logical devices can only be made before TensorFlow's runtime starts, which a pytest
process that already ran TensorFlow cannot undo, hence a script. It prints one JSON line:
the strategy it got, the loss of one epoch of Keras `fit` under it, the loss of the same
epoch through `fit_distributed`, and the error for re-splitting the CPU too late.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, when run as a file

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from shared.distribute import configure_devices, describe_strategy, select_strategy  # noqa: E402
from shared.errors import UserError  # noqa: E402
from shared.run_dir import RunDir  # noqa: E402
from shared.training.distributed_loop import fit_distributed  # noqa: E402
from shared.training.settings import RuntimeConfig, TrainConfig  # noqa: E402


def build_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    runtime = RuntimeConfig(strategy="mirrored", devices=2)
    configure_devices(runtime)
    configure_devices(runtime)  # the same layout again is a no-op
    strategy = select_strategy(runtime)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # global batch: 8 each

    with strategy.scope():
        fit_model = build_model()
    fit_loss = fit_model.fit(dataset, epochs=1, verbose=0).history["loss"][-1]
    with strategy.scope():
        loop_model = build_model()
    run = RunDir(tempfile.mkdtemp())
    run.prepare()
    loop_history = fit_distributed(
        loop_model,
        dataset,
        None,
        strategy=strategy,
        run=run,
        train=TrainConfig(epochs=1),
        verbose=0,
    )

    try:
        configure_devices(RuntimeConfig(strategy="mirrored", devices=3))
        late_error = None
    except UserError as exc:
        late_error = str(exc)

    print(
        json.dumps(
            {
                "strategy": type(strategy).__name__,
                "description": describe_strategy(strategy),
                "replicas": strategy.num_replicas_in_sync,
                "logical_cpus": len(tf.config.list_logical_devices("CPU")),
                "fit_loss": fit_loss,
                "loop_loss": loop_history.history["loss"][-1],
                "late_error": late_error,
            }
        )
    )


if __name__ == "__main__":
    main()
