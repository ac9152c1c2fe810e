"""StyleGAN's per-pixel noise input, scaled by a learned per-channel strength."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class NoiseInjection(keras.layers.Layer):
    """x + strength * N(0, 1), one noise value per pixel broadcast over channels.

    The strengths start at zero (as in StyleGAN), so the generator learns how much
    stochastic detail (hair, pores, stroke texture) each channel gets.

    Args:
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = keras.random.SeedGenerator(7)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.strength = self.add_weight(
            shape=(int(input_shape[-1]),), initializer="zeros", name="strength"
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        shape = ops.shape(inputs)
        noise = keras.random.normal(
            (shape[0], shape[1], shape[2], 1), seed=self.seed, dtype=inputs.dtype
        )
        return inputs + ops.cast(self.strength, inputs.dtype) * noise

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape
