"""Zoo speed: our ResNet-50 and transformer encoder block against the standard Keras builds.

- ResNet-50: the zoo's `resnet50` preset vs `keras.applications.ResNet50(weights=None)`,
  same 64x64x3 inputs (ImageNet stem on both), 1000 classes, SGD, fixed synthetic batch.
- Transformer block: the zoo's `TransformerEncoderBlock` (fused QKV projection,
  `keras.ops.dot_product_attention`) vs the block composed by hand the standard way
  (`keras.layers.MultiHeadAttention`, residual adds, LayerNormalization, a Dense-GELU-Dense
  feed-forward), same width, heads, feed-forward size and post-norm placement, four
  layers on (batch, time, width) inputs with a regression head, Adam.

Each pair trains in interleaved blocks of steps after warm-up; the ratio is the
reference's median step time over ours (>= 1: ours is at least as fast).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from benchmarks.common import (
    median,
    record,
    synthetic_batches,
    train_steps,
    warm_up,
    without_autotune,
)
from shared.blocks import TransformerEncoderBlock
from shared.zoo import build_model

NAME = "zoo_speed"
TARGET = 1.0
IMAGE_SHAPE = (64, 64, 3)
NUM_CLASSES = 1000
RESNET_BATCH = 16
WIDTH, HEADS, FF_DIM, LAYERS = 256, 4, 1024, 4


def standard_encoder_block(x, name: str):
    """The textbook post-norm block with keras.layers.MultiHeadAttention."""
    attention = keras.layers.MultiHeadAttention(HEADS, WIDTH // HEADS, name=f"{name}_mha")(x, x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm1")(x + attention)
    h = keras.layers.Dense(FF_DIM, activation="gelu", name=f"{name}_ff1")(x)
    h = keras.layers.Dense(WIDTH, name=f"{name}_ff2")(h)
    return keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm2")(x + h)


def transformer_pair(time_steps: int) -> dict[str, keras.Model]:
    models = {}
    for label in ("ours", "keras"):
        inputs = keras.Input((time_steps, WIDTH))
        x = inputs
        for i in range(LAYERS):
            if label == "ours":
                x = TransformerEncoderBlock(HEADS, FF_DIM, norm="post", name=f"layer_{i}")(x)
            else:
                x = standard_encoder_block(x, f"layer_{i}")
        outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x))
        model = keras.Model(inputs, outputs, name=f"{label}_transformer")
        model.compile(keras.optimizers.Adam(1e-4), "mse", jit_compile=False)
        models[label] = model
    return models


def resnet_pair() -> dict[str, keras.Model]:
    models = {
        "ours": build_model(
            "resnet50", input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, stem="imagenet"
        ),
        "keras": keras.applications.ResNet50(
            weights=None, input_shape=IMAGE_SHAPE, classes=NUM_CLASSES
        ),
    }
    for model in models.values():
        model.compile(
            keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", jit_compile=False
        )
    return models


def interleaved(models: dict[str, keras.Model], data, block_steps: int, blocks: int) -> dict:
    for model in models.values():
        warm_up(model, data, 1)
    steps: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(blocks):
        for name, model in models.items():
            steps[name] += train_steps(model, data, block_steps)
    return steps


def run(quick: bool) -> list[dict]:
    block_steps, blocks = (2, 1) if quick else (8, 3)
    time_steps, batch = (32, 8) if quick else (128, 16)
    records = []

    keras.utils.set_random_seed(0)
    models = resnet_pair()
    params = {name: m.count_params() for name, m in models.items()}
    steps = interleaved(
        models, synthetic_batches(RESNET_BATCH, IMAGE_SHAPE, NUM_CLASSES), block_steps, blocks
    )
    records.append(
        record(
            NAME,
            quick=quick,
            pair="resnet50",
            image_shape=list(IMAGE_SHAPE),
            batch_size=RESNET_BATCH,
            ours_params=params["ours"],
            keras_params=params["keras"],
            ours_step_seconds=steps["ours"],
            keras_step_seconds=steps["keras"],
            ours_images_per_s=RESNET_BATCH / median(steps["ours"]),
            keras_images_per_s=RESNET_BATCH / median(steps["keras"]),
            ratio=median(steps["keras"]) / median(steps["ours"]),
            target=TARGET,
        )
    )
    del models
    keras.backend.clear_session()

    keras.utils.set_random_seed(0)
    models = transformer_pair(time_steps)
    params = {name: m.count_params() for name, m in models.items()}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, time_steps, WIDTH)).astype("float32")
    y = rng.normal(size=(batch, 1)).astype("float32")
    data = without_autotune(tf.data.Dataset.from_tensors((x, y)).repeat())
    steps = interleaved(models, data, block_steps, blocks)
    records.append(
        record(
            NAME,
            quick=quick,
            pair="transformer_encoder_block",
            layers=LAYERS,
            width=WIDTH,
            heads=HEADS,
            ff_dim=FF_DIM,
            time_steps=time_steps,
            batch_size=batch,
            ours_params=params["ours"],
            keras_params=params["keras"],
            ours_step_seconds=steps["ours"],
            keras_step_seconds=steps["keras"],
            ours_tokens_per_s=batch * time_steps / median(steps["ours"]),
            keras_tokens_per_s=batch * time_steps / median(steps["keras"]),
            ratio=median(steps["keras"]) / median(steps["ours"]),
            target=TARGET,
        )
    )
    return records
