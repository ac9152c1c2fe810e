"""Pass a tensor through while adding a weighted auxiliary loss to the model."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class AuxiliaryLoss(keras.layers.Layer):
    """[x, per_example_loss] -> x, adding `weight * mean(per_example_loss)` with add_loss.

    For regularisers that belong to the architecture rather than to `compile`: CapsNet's
    reconstruction loss, auxiliary heads. Routing the output through this layer keeps
    the loss branch inside the functional graph (a branch that reaches no output would
    be dropped with its weights).

    Args:
        weight: Multiplier of the loss (CapsNet: 0.0005).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, weight: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: Any) -> Any:
        passthrough, loss = inputs
        self.add_loss(self.weight * ops.mean(ops.cast(loss, "float32")))
        return passthrough

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"weight": self.weight})
        return config
