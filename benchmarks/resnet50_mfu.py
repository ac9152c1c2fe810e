"""ResNet-50 model-FLOPs utilisation: our zoo ResNet-50 vs keras.applications.ResNet50.

MFU = training images/s x training FLOPs per image / this machine's fp32 matmul FLOP/s.

- Peak: median FLOP/s of large square fp32 `tf.linalg.matmul`s in a `tf.function`,
  measured before and after the training runs; the best size and time counts (other
  load on a shared machine only lowers it). It is what this CPU reaches on an ideal
  kernel, not a datasheet peak.
- FLOPs: counted by TensorFlow's profiler (`tf.compat.v1.profiler`, `float_operation()`)
  on the graph of a traced inference forward pass at batch 1: convolutions and the dense
  layer (2 FLOPs per multiply-add) plus the small elementwise ops it has statistics for
  (inference batch norm, bias adds). Training FLOPs per image = 3 x forward (the backward
  pass costs about twice the forward).
- Ours is the `resnet50` preset (keras.applications' layout: v1 strides, conv biases) at
  64x64x3 with the ImageNet stem, so both models do the same arithmetic.

Both models train with plain SGD on the same fixed synthetic batch (input cost ~0), in
interleaved blocks of steps; images/s comes from the median step time.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from benchmarks.common import (
    median,
    record,
    synthetic_batches,
    time_calls,
    train_steps,
    warm_up,
)
from shared.zoo import build_model

NAME = "resnet50_mfu"
TARGET = 1.0  # our MFU over keras.applications'
IMAGE_SHAPE = (64, 64, 3)
NUM_CLASSES = 1000
BATCH_SIZE = 32


def matmul_flops_per_s(size: int, repeats: int) -> float:
    """Median FLOP/s of a `size` x `size` fp32 matmul (2 * size**3 FLOPs each)."""
    a = tf.random.normal((size, size), seed=1)
    b = tf.random.normal((size, size), seed=2)
    matmul = tf.function(tf.linalg.matmul)
    samples = time_calls(lambda: matmul(a, b), repeats=repeats, warmup=1)
    return 2 * size**3 / median(samples)


def forward_flops(model: keras.Model) -> int:
    """FLOPs of one image's inference forward pass, counted by TensorFlow's profiler."""
    forward = tf.function(lambda x: model(x, training=False))
    graph = forward.get_concrete_function(
        tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    ).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options)
    return int(profile.total_float_ops)


def build_pair() -> dict[str, keras.Model]:
    """Ours and keras.applications' ResNet-50, compiled the same way."""
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
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            jit_compile=False,
        )
    return models


def run(quick: bool) -> list[dict]:
    """Peak matmul FLOP/s, then interleaved training blocks; ratio of MFUs."""
    sizes, matmul_repeats = ((1024,), 3) if quick else ((2048, 4096), 5)
    warmup_steps, block_steps, blocks = (1, 2, 1) if quick else (1, 10, 2)

    matmul_before = {str(n): matmul_flops_per_s(n, matmul_repeats) for n in sizes}

    keras.utils.set_random_seed(0)
    models = build_pair()
    data = synthetic_batches(BATCH_SIZE, IMAGE_SHAPE, NUM_CLASSES)
    flops = {name: forward_flops(model) for name, model in models.items()}
    for model in models.values():
        warm_up(model, data, warmup_steps)
    step_s: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(blocks):
        for name, model in models.items():
            step_s[name] += train_steps(model, data, block_steps)
    matmul_after = {str(n): matmul_flops_per_s(n, matmul_repeats) for n in sizes}
    matmul = {n: max(matmul_before[n], matmul_after[n]) for n in matmul_before}
    peak = max(matmul.values())

    fields: dict = {}
    mfu = {}
    for name in models:
        images_per_s = BATCH_SIZE / median(step_s[name])
        train_flops = 3 * flops[name]
        mfu[name] = images_per_s * train_flops / peak
        fields[f"{name}_images_per_s"] = images_per_s
        fields[f"{name}_forward_gflops_per_image"] = flops[name] / 1e9
        fields[f"{name}_train_gflops_per_image"] = train_flops / 1e9
        fields[f"{name}_achieved_gflops_per_s"] = images_per_s * train_flops / 1e9
        fields[f"{name}_mfu"] = mfu[name]
        fields[f"{name}_params"] = models[name].count_params()
        fields[f"{name}_step_seconds"] = step_s[name]
    return [
        record(
            NAME,
            quick=quick,
            ours_model="zoo resnet50 preset (keras.applications layout), stem=imagenet",
            image_shape=list(IMAGE_SHAPE),
            num_classes=NUM_CLASSES,
            batch_size=BATCH_SIZE,
            optimizer="SGD(0.01)",
            flops_method="tf.compat.v1.profiler float_operation() on traced forward, x3",
            matmul_gflops_per_s_before={n: v / 1e9 for n, v in matmul_before.items()},
            matmul_gflops_per_s_after={n: v / 1e9 for n, v in matmul_after.items()},
            peak_gflops_per_s=peak / 1e9,
            timed_steps_each=len(step_s["ours"]),
            **fields,
            ratio=mfu["ours"] / mfu["keras"],
            target=TARGET,
        )
    ]
