"""Learned absolute position embeddings (BERT, GPT-2), added to the inputs."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class PositionEmbedding(keras.layers.Layer):
    """x + P[:length], with P a trainable (max_length, dim) table.

    Args:
        max_length: Rows of the table (512 in BERT, 1024 in GPT-2); a longer
            sequence is an error at build time.
        initializer: Initializer of the table (BERT and GPT-2 use N(0, 0.02)).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, max_length: int, initializer: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        length = input_shape[-2]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"sequence length {length} exceeds the position table ({self.max_length})"
            )
        self.embeddings = self.add_weight(
            shape=(self.max_length, int(input_shape[-1])),
            initializer=self.initializer,
            name="embeddings",
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        length = ops.shape(inputs)[-2]
        return inputs + ops.cast(self.embeddings[:length], inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
