"""A learned tensor, repeated over the batch: StyleGAN's synthesis network starts from one."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class LearnedConstant(keras.layers.Layer):
    """Any input of batch size B -> the learned `shape` tensor repeated B times.

    The input only supplies the batch size (StyleGAN feeds its style vector), so the
    generator's first feature map is the same for every sample and all variation
    enters through styles and noise.

    Args:
        shape: Shape of the constant without the batch axis, e.g. (4, 4, 512).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, shape: tuple[int, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.shape = tuple(int(d) for d in shape)

    def build(self, input_shape: Any) -> None:
        self.constant = self.add_weight(
            shape=self.shape, initializer="random_normal", name="constant"
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(self.constant[None], (batch, *self.shape))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (input_shape[0], *self.shape)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"shape": list(self.shape)})
        return config
