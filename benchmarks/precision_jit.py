"""Precision and XLA: one ResNet trained under float32, mixed_bfloat16 and float32 + XLA.

No target: the record says which configuration is fastest here (`fastest`), the evidence
for the suite's defaults (`train.precision`, `train.jit`). The model is our zoo ResNet-18
(width 64, ImageNet stem) at 64x64x3, batch 32: big enough that the convolutions dominate,
small enough to trace three times in a couple of minutes. Each configuration gets its own
model, built, compiled and traced under its policy; the global policy is reset to float32
afterwards whatever happens. Timed blocks are interleaved; each block is capped in time
because XLA's CPU convolutions can be an order of magnitude slower than oneDNN's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from benchmarks.common import median, record, synthetic_batches, train_steps, warm_up
from shared.zoo import build_model

NAME = "precision_jit"
IMAGE_SHAPE = (64, 64, 3)
NUM_CLASSES = 10
BATCH_SIZE = 32
DEPTH = 18
# name -> (Keras dtype policy, jit_compile)
CONFIGS: dict[str, tuple[str, bool]] = {
    "float32": ("float32", False),
    "mixed_bfloat16": ("mixed_bfloat16", False),
    "float32_xla": ("float32", True),
}
BASELINE = "float32"


@contextmanager
def global_policy(name: str) -> Iterator[None]:
    """Set the Keras global dtype policy for a block, then reset it to float32."""
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def run(quick: bool) -> list[dict]:
    """Build and trace each configuration, then time interleaved blocks; ratios vs float32."""
    warmup_steps, block_steps, blocks, block_budget_s = (
        (1, 2, 1, 10.0) if quick else (1, 8, 2, 20.0)
    )
    data = synthetic_batches(BATCH_SIZE, IMAGE_SHAPE, NUM_CLASSES)
    models: dict[str, keras.Model] = {}
    for name, (policy, jit) in CONFIGS.items():
        with global_policy(policy):
            keras.utils.set_random_seed(0)
            model = build_model(
                "resnet", input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, depth=DEPTH
            )
            model.compile(
                optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                jit_compile=jit,
            )
            warm_up(model, data, warmup_steps)  # traces (and for XLA, compiles)
        models[name] = model

    step_s: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(blocks):
        for name, model in models.items():
            step_s[name] += train_steps(model, data, block_steps, budget_s=block_budget_s)

    images_per_s = {name: BATCH_SIZE / median(times) for name, times in step_s.items()}
    ratios = {name: ips / images_per_s[BASELINE] for name, ips in images_per_s.items()}
    fastest = max(images_per_s, key=images_per_s.get)
    return [
        record(
            NAME,
            quick=quick,
            model=f"zoo resnet depth={DEPTH} width=64 stem=auto (imagenet at 64px)",
            image_shape=list(IMAGE_SHAPE),
            batch_size=BATCH_SIZE,
            configs={name: {"policy": p, "jit_compile": j} for name, (p, j) in CONFIGS.items()},
            images_per_s=images_per_s,
            ratios_vs_float32=ratios,
            step_seconds=step_s,
            fastest=fastest,
            ratio=ratios[fastest],
            target=None,
        )
    ]
