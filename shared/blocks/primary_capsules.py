"""CapsNet's PrimaryCaps: a convolution whose channels are grouped into squashed vectors."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.blocks.capsule_routing import squash


@keras.saving.register_keras_serializable(package="deepfield")
class PrimaryCapsules(keras.layers.Layer):
    """(batch, H, W, C) -> (batch, H' * W' * num_capsules, capsule_dim), squashed.

    One conv with `num_capsules * capsule_dim` output channels ("valid" padding, as
    in the paper: 20x20x256 -> 6x6x(32x8) on MNIST, 1152 capsules of 8 dimensions).

    Args:
        num_capsules: Capsule types per position (32 in the paper).
        capsule_dim: Dimensions of each capsule (8).
        kernel_size: Conv kernel side (9).
        strides: Conv stride (2).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        num_capsules: int = 32,
        capsule_dim: int = 8,
        kernel_size: int = 9,
        strides: int = 2,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_capsules = int(num_capsules)
        self.capsule_dim = int(capsule_dim)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.conv = keras.layers.Conv2D(
            self.num_capsules * self.capsule_dim,
            self.kernel_size,
            strides=self.strides,
            padding="valid",
            dtype=self.dtype_policy,
            name="conv",
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        height, width = input_shape[1], input_shape[2]
        if height is not None and min(height, width) < self.kernel_size:
            raise ValueError(
                f"a {height}x{width} map is smaller than the {self.kernel_size}x"
                f"{self.kernel_size} primary-capsule kernel"
            )
        self.conv.build(input_shape)
        self.built = True

    def call(self, inputs: Any) -> Any:
        x = self.conv(inputs)
        return squash(ops.reshape(x, (ops.shape(x)[0], -1, self.capsule_dim)))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        _, height, width, _ = self.conv.compute_output_shape(input_shape)
        return (input_shape[0], height * width * self.num_capsules, self.capsule_dim)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_capsules": self.num_capsules,
                "capsule_dim": self.capsule_dim,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
            }
        )
        return config
