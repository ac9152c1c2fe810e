"""Capsules with dynamic routing by agreement (Sabour, Frosst & Hinton, 2017)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def squash(vectors: Any, axis: int = -1, epsilon: float = 1e-7) -> Any:
    """|s|^2 / (1 + |s|^2) * s / |s|: keeps direction, maps length into [0, 1)."""
    squared = ops.sum(ops.square(vectors), axis=axis, keepdims=True)
    return squared / (1.0 + squared) * vectors / ops.sqrt(squared + epsilon)


@keras.saving.register_keras_serializable(package="deepfield")
class CapsuleRouting(keras.layers.Layer):
    """(batch, in_caps, in_dim) -> (batch, num_capsules, capsule_dim) by routing.

    Every input capsule i predicts every output capsule j through its own matrix
    W_ij (u_hat = W_ij u_i); `routings` rounds of routing by agreement then weight
    the predictions by coupling coefficients c_ij = softmax_j(b_ij), with b_ij raised
    by the agreement u_hat . v_j. The paper's DigitCaps has no biases, which is what
    its parameter count (1152 x 10 x 8 x 16 = 1,474,560) assumes.

    Args:
        num_capsules: Output capsules (one per class in CapsNet).
        capsule_dim: Length of each output capsule's vector.
        routings: Routing iterations (3 in the paper).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, num_capsules: int, capsule_dim: int, routings: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        if int(routings) < 1:
            raise ValueError(f"routings must be >= 1, got {routings}")
        self.num_capsules = int(num_capsules)
        self.capsule_dim = int(capsule_dim)
        self.routings = int(routings)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_caps, in_dim = input_shape[1], input_shape[2]
        if in_caps is None:
            raise ValueError("CapsuleRouting needs a known number of input capsules")
        self.kernel = self.add_weight(
            shape=(int(in_caps), self.num_capsules, int(in_dim), self.capsule_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="kernel",
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        predictions = ops.einsum("bid,ijde->bije", inputs, ops.cast(self.kernel, inputs.dtype))
        # Agreement only steers the coupling: no gradient through the routing loop's
        # view of the predictions (as in the reference implementation).
        fixed = ops.stop_gradient(predictions)
        logits = ops.zeros(ops.shape(predictions)[:3], dtype=inputs.dtype)
        for iteration in range(self.routings):
            coupling = ops.softmax(logits, axis=2)[..., None]
            source = predictions if iteration == self.routings - 1 else fixed
            outputs = squash(ops.sum(coupling * source, axis=1))
            if iteration < self.routings - 1:
                logits = logits + ops.einsum("bije,bje->bij", fixed, outputs)
        return outputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.num_capsules, self.capsule_dim)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_capsules": self.num_capsules,
                "capsule_dim": self.capsule_dim,
                "routings": self.routings,
            }
        )
        return config
