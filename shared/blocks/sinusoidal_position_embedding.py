"""Fixed sine/cosine position encodings (Vaswani et al., 2017), added to the inputs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class SinusoidalPositionEmbedding(keras.layers.Layer):
    """x + PE, with PE[t, 2i] = sin(t / 10000^(2i/d)) and PE[t, 2i+1] = cos(...).

    No weights: the table is a constant of `max_length` rows, so a sequence longer
    than that is an error at build time rather than a silent wrap-around.

    Args:
        max_length: Longest sequence the table covers.
        base: The 10000 of the formula.
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, max_length: int, base: float = 10000.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.base = float(base)
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        length, dim = input_shape[-2], int(input_shape[-1])
        if length is not None and length > self.max_length:
            raise ValueError(
                f"sequence length {length} exceeds the position table ({self.max_length})"
            )
        positions = np.arange(self.max_length)[:, None]
        rates = 1.0 / self.base ** (2 * (np.arange(dim) // 2) / dim)
        angles = positions * rates[None, :]
        table = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
        self.table = table.astype("float32")
        self.built = True

    def call(self, inputs: Any) -> Any:
        length = ops.shape(inputs)[-2]
        table = ops.cast(ops.convert_to_tensor(self.table)[:length], inputs.dtype)
        return inputs + table

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"max_length": self.max_length, "base": self.base})
        return config
