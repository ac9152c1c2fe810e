"""Healthcare segment export: raw intensities and spacing in, label map and volumes out.

`serving_default` takes `image` (float32, batch first: (B, D, H, W) for a 3D run, (B, H, W)
for a 2D one, in HU for CT or scanner intensity for MR, canonical RAS axes) and `spacing`
((B, 3) or (B, 2) mm). Inside the graph: the run's normalisation (the CT window, or a
z-score per image), zero padding up to a multiple of 2^depth on every side, one U-Net pass
over the whole padded input (the trained patch's weights apply at any size: every layer
is convolutional), crop, arg-max. Outputs: `mask` (uint8 labels, the input's shape) and
`volumes_ml` ((B, classes - 1): each foreground class's volume in millilitres, in
`label_names` order after the background, as in assets.extra/deepfield.json).

No sliding window in the graph: the whole input goes through the network at once, so
memory grows with the input; on CPU keep 3D inputs to about 160^3 voxels (a hippocampus
crop or the phantom volume is far below) and use `deepfield healthcare predict` (sliding
windows) for larger volumes. Predictions can differ from predict's at patch borders,
where predict blends overlapping windows.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.healthcare import seg_data, segment
from domains.healthcare.config import HealthcareConfig
from domains.healthcare.seg_data import INPUT_SCALE
from shared import model_io
from shared.export import ServingSpec
from shared.run_dir import RunDir

WARMUP_CASES = 2


def dynamic_unet(model: keras.Model, dims: int) -> keras.Model:
    """The trained U-Net's own layers rewired on an input of any spatial size."""
    image = keras.Input(shape=(*(None,) * dims, 1), dtype="float32", name="image")
    x = model.get_layer("preprocess")(image)
    depth = sum(layer.name.startswith("encoder_") for layer in model.layers)
    skips = []
    for i in range(depth):
        skip, x = model.get_layer(f"encoder_{i + 1}")(x)
        skips.append(skip)
    x = model.get_layer("bottom")(x)
    for i in reversed(range(depth)):
        x = model.get_layer(f"decoder_{i + 1}")(x, skips[i])
    return keras.Model(image, model.get_layer("segmentation")(x), name=f"{model.name}_any_size")


class SegmentServing(tf.Module):
    """The U-Net with its normalisation, padding and volume computation."""

    def __init__(self, model: keras.Model, contract: dict[str, Any]):
        super().__init__(name="healthcare_segmenter")
        self.dims = int(contract["dims"])
        self.model = model
        self.network = dynamic_unet(model, self.dims)
        self.depth = sum(layer.name.startswith("encoder_") for layer in model.layers)
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

    def segment(self, image: tf.Tensor, spacing: tf.Tensor) -> dict[str, tf.Tensor]:
        image = tf.convert_to_tensor(image, tf.float32)
        shape = tf.shape(image)
        factor = 2**self.depth
        sizes = [shape[axis] for axis in range(1, self.dims + 1)]
        pads = [[0, 0]] + [[0, (-size) % factor] for size in sizes]
        x = tf.pad(self.normalize(image), pads)[..., None]
        probabilities = self.network(x, training=False)
        crop = probabilities[(slice(None), *(slice(0, size) for size in sizes))]
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
    module = SegmentServing(model, contract)
    signatures = module.signatures()
    data = seg_data.load(config, config.runtime.seed)
    cases = data.splits["test"][:WARMUP_CASES]
    warmup, expected = [], []
    for case in cases:
        request = {
            "image": case.image[None].astype(np.float32),
            "spacing": np.asarray([case.spacing], np.float32),
        }
        out = signatures["serving_default"](**{k: tf.constant(v) for k, v in request.items()})
        warmup.append(request)
        expected.append({k: v.numpy() for k, v in out.items()})
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
            "whole input in one pass (no sliding window)",
            "run": str(run.path.resolve()),
            "data": data.spec,
        },
    )
