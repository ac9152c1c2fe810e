"""Feature pyramid network neck (Lin et al., 2017): backbone stages to same-width maps."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class FeaturePyramid(keras.layers.Layer):
    """Top-down feature pyramid over a list of backbone maps, finest first.

    Each input gets a 1x1 lateral conv to `channels`; from the coarsest down, the
    coarser result is upsampled (nearest, 2x) and added to the next finer lateral, and
    every sum gets a 3x3 output conv. Inputs whose sides are not exact halves ("same"
    padding rounds odd sides up) are handled by cropping the upsampled map to the finer
    one. Returns the list of pyramid maps, finest first (P3, P4, P5 for C3, C4, C5).
    Keras has no FPN layer (KerasHub's lives inside its RetinaNet and is not a dependency).

    Args:
        channels: Width of every pyramid level.
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(self, channels: int = 64, **kwargs: Any):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.laterals: list[keras.layers.Layer] = []
        self.output_convs: list[keras.layers.Layer] = []

    def build(self, input_shapes: list[tuple[int | None, ...]]) -> None:
        # === Layers ===
        for level, shape in enumerate(input_shapes):
            lateral = keras.layers.Conv2D(
                self.channels, 1, dtype=self.dtype_policy, name=f"lateral{level}"
            )
            lateral.build(shape)
            out = keras.layers.Conv2D(
                self.channels, 3, padding="same", dtype=self.dtype_policy, name=f"output{level}"
            )
            out.build((*shape[:-1], self.channels))
            self.laterals.append(lateral)
            self.output_convs.append(out)
        self.built = True

    def call(self, inputs: list[Any]) -> list[Any]:
        merged = [lateral(x) for lateral, x in zip(self.laterals, inputs, strict=True)]
        for level in range(len(merged) - 2, -1, -1):
            finer = merged[level]
            up = ops.repeat(ops.repeat(merged[level + 1], 2, axis=1), 2, axis=2)
            height, width = ops.shape(finer)[1], ops.shape(finer)[2]
            merged[level] = finer + up[:, :height, :width, :]
        return [out(x) for out, x in zip(self.output_convs, merged, strict=True)]

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]) -> list[tuple]:
        return [(*shape[:-1], self.channels) for shape in input_shapes]

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"channels": self.channels})
        return config
