"""Healthcare segment export: raw intensities and spacing in, label map and volumes out.

`serving_default` takes `image` (float32, batch first: (B, D, H, W) for a 3D run, (B, H, W)
for a 2D one, in HU for CT or scanner intensity for MR, canonical RAS axes) and `spacing`
((B, 3) or (B, 2) mm). Inside the graph, as `deepfield healthcare predict` does it: the
run's normalisation (the CT window, or a z-score per image), zero padding (evenly on both
sides) on any axis shorter than the trained patch, Gaussian-weighted sliding windows of the
patch with the run's `segment.overlap` and `segment.sigma_scale` (the windows, their order
and the importance map are `sliding_window`'s, so the served probabilities equal predict's
to float precision), the crop back, arg-max. Memory grows with the input only through the
blended output, not the network: each window is one U-Net call on a batch of patches.
Outputs: `mask` (uint8 labels, the input's shape) and `volumes_ml` ((B, classes - 1): each
foreground class's volume in millilitres, in `label_names` order after the background, as
in assets.extra/deepfield.json).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.healthcare import seg_data, segment
from domains.healthcare.config import HealthcareConfig
from domains.healthcare.seg_data import INPUT_SCALE
from domains.healthcare.sliding_window import gaussian_importance
from shared import model_io
from shared.export import ServingSpec, served_examples
from shared.run_dir import RunDir

WARMUP_CASES = 2


class SegmentServing(tf.Module):
    """The U-Net with its normalisation, sliding windows and volume computation."""

    def __init__(self, model: keras.Model, contract: dict[str, Any], config: HealthcareConfig):
        super().__init__(name="healthcare_segmenter")
        self.dims = int(contract["dims"])
        self.model = model
        self.patch = tuple(int(p) for p in contract["patch_size"])
        self.overlap = float(config.segment.overlap)
        self.importance = tf.constant(
            gaussian_importance(self.patch, config.segment.sigma_scale), tf.float32
        )
        self.mode = contract["normalize"]
        self.low, self.high = (float(v) for v in contract["window"])
        self.classes = len(contract["label_names"])

    def normalize(self, image: tf.Tensor) -> tf.Tensor:
        """As `seg_data.normalize`, per example."""
        axes = list(range(1, self.dims + 1))
        if self.mode == "window":
            out = tf.clip_by_value((image - self.low) / (self.high - self.low), 0.0, 1.0)
        elif self.mode == "zscore":
            mean = tf.reduce_mean(image, axis=axes, keepdims=True)
            std = tf.math.reduce_std(image, axis=axes, keepdims=True)
            out = (image - mean) / tf.maximum(std, 1e-6)
        else:
            out = image
        return out * INPUT_SCALE

    def window_starts(self, size: tf.Tensor, patch: int) -> tf.Tensor:
        """`sliding_window.window_starts` in the graph: every stride, then one flush with the
        end (a single 0 when the axis is the patch's length)."""
        stride = max(1, int(patch * (1.0 - self.overlap)))
        count = tf.math.floordiv(size - patch + stride - 1, stride)
        return tf.concat([tf.range(count) * stride, [size - patch]], axis=0)

    def sliding(self, x: tf.Tensor) -> tf.Tensor:
        """Blended class probabilities (B, spatial..., K) of a normalised (B, spatial..., 1)
        input at least the patch on every axis."""
        sizes = [tf.shape(x)[axis] for axis in range(1, self.dims + 1)]
        grids = tf.meshgrid(
            *[self.window_starts(size, p) for size, p in zip(sizes, self.patch, strict=True)],
            indexing="ij",
        )
        starts = tf.stack([tf.reshape(g, [-1]) for g in grids], axis=1)  # row-major order
        batch = tf.shape(x)[0]
        total = tf.zeros([batch, *sizes, self.classes], tf.float32)
        weights = tf.zeros(sizes, tf.float32)

        def step(i, total, weights):
            start = starts[i]
            window = tf.slice(x, [0, *tf.unstack(start), 0], [-1, *self.patch, -1])
            window = tf.ensure_shape(window, [None, *self.patch, 1])
            probs = tf.cast(self.model(window, training=False), tf.float32)
            pads = tf.stack([start, tf.stack(sizes) - start - self.patch], axis=1)
            placed = tf.pad(
                probs * self.importance[None, ..., None],
                tf.concat([[[0, 0]], pads, [[0, 0]]], axis=0),
            )
            return i + 1, total + placed, weights + tf.pad(self.importance, pads)

        _, total, weights = tf.while_loop(
            lambda i, *_: i < tf.shape(starts)[0], step, [tf.constant(0), total, weights]
        )
        return total / weights[None, ..., None]

    def segment(self, image: tf.Tensor, spacing: tf.Tensor) -> dict[str, tf.Tensor]:
        image = tf.convert_to_tensor(image, tf.float32)
        shape = tf.shape(image)
        sizes = [shape[axis] for axis in range(1, self.dims + 1)]
        extra = [tf.maximum(0, p - size) for p, size in zip(self.patch, sizes, strict=True)]
        pads = [[0, 0]] + [[e // 2, e - e // 2] for e in extra]
        x = tf.pad(self.normalize(image), pads)[..., None]
        probabilities = self.sliding(x)
        crop = probabilities[
            (
                slice(None),
                *(slice(e // 2, e // 2 + size) for e, size in zip(extra, sizes, strict=True)),
            )
        ]
        mask = tf.cast(tf.argmax(crop, axis=-1), tf.uint8)
        counts = tf.reduce_sum(
            tf.one_hot(tf.cast(mask, tf.int32), self.classes, dtype=tf.float32),
            axis=list(range(1, self.dims + 1)),
        )[:, 1:]
        voxel_ml = tf.reduce_prod(tf.cast(spacing, tf.float32), axis=-1, keepdims=True) / 1000.0
        return {"mask": mask, "volumes_ml": counts * voxel_ml}

    def signatures(self) -> dict[str, Any]:
        spatial = [None] * (self.dims + 1)
        serve = tf.function(
            self.segment,
            input_signature=[
                tf.TensorSpec(spatial, tf.float32, name="image"),
                tf.TensorSpec([None, self.dims], tf.float32, name="spacing"),
            ],
        )
        self.serve = serve
        return {"serving_default": serve}


def serving_spec(run: RunDir, config: HealthcareConfig) -> ServingSpec:
    """The export of a finished segment run, warmed up with its first test cases."""
    contract = segment.run_contract(run)
    model = model_io.load_model(run.model_path)
    module = SegmentServing(model, contract, config)
    signatures = module.signatures()
    data = seg_data.load(config, config.runtime.seed)
    cases = data.splits["test"][:WARMUP_CASES]
    requests = [
        {
            "image": case.image[None].astype(np.float32),
            "spacing": np.asarray([case.spacing], np.float32),
        }
        for case in cases
    ]
    warmup, expected = served_examples(signatures["serving_default"], requests)
    return ServingSpec(
        module=module,
        signatures=signatures,
        warmup=warmup,
        expected=expected,
        metadata={
            "domain": "healthcare",
            "task": "segment",
            "label_names": contract["label_names"],
            "volumes_ml_classes": contract["label_names"][1:],
            "dims": contract["dims"],
            "normalize": contract["normalize"],
            "window": contract["window"],
            "spacing": contract.get("spacing"),
            "input": "raw intensities (HU for CT), canonical RAS axes, batch first; "
            "Gaussian sliding windows of patch_size inside the graph",
            "patch_size": list(module.patch),
            "overlap": module.overlap,
            "run": str(run.path.resolve()),
            "data": data.spec,
        },
    )
