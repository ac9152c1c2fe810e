"""A token embedding whose transpose is also the output projection (tied weights)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class ReversibleEmbedding(keras.layers.Embedding):
    """`Embedding` that, called with `reverse=True`, maps hidden states to vocabulary
    logits with the same matrix (Press & Wolf, 2017), as GPT-2 and BERT's masked-LM
    head do: the logits cost no extra weights (BERT adds one bias per token:
    `reverse_bias=True`).

    Args:
        input_dim: Vocabulary size.
        output_dim: Hidden size.
        reverse_bias: Add a learned per-token bias to the reverse logits.
        **kwargs: `keras.layers.Embedding` arguments (mask_zero, initializer, ...).
    """

    def __init__(self, input_dim: int, output_dim: int, reverse_bias: bool = False, **kwargs: Any):
        super().__init__(input_dim, output_dim, **kwargs)
        self.reverse_bias = bool(reverse_bias)
        # The reverse direction receives the masked hidden states; it keeps no mask.
        self.supports_masking = True

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        if self.reverse_bias:
            self.output_bias = self.add_weight(
                shape=(self.input_dim,), initializer="zeros", name="output_bias"
            )

    # Embedding saves only its own (quantization-aware) variables: add the bias.
    def save_own_variables(self, store: Any) -> None:
        super().save_own_variables(store)
        if self.built and self.reverse_bias:
            store["output_bias"] = self.output_bias

    def load_own_variables(self, store: Any) -> None:
        super().load_own_variables(store)
        if self.built and self.reverse_bias:
            self.output_bias.assign(store["output_bias"])

    def call(self, inputs: Any, reverse: bool = False) -> Any:
        if not reverse:
            return super().call(inputs)
        logits = ops.matmul(inputs, ops.cast(ops.transpose(self.embeddings), inputs.dtype))
        if self.reverse_bias:
            logits = logits + ops.cast(self.output_bias, logits.dtype)
        return logits

    def compute_output_shape(self, input_shape: Any, reverse: bool = False) -> Any:
        if reverse:
            return (*tuple(input_shape)[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs: Any, reverse: bool = False) -> Any:
        if reverse:
            shape = (*tuple(inputs.shape)[:-1], self.input_dim)
            return keras.KerasTensor(shape, dtype=self.compute_dtype)
        return super().compute_output_spec(inputs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        # Float inputs are the reverse direction, which has no padding to mask.
        if keras.backend.standardize_dtype(inputs.dtype).startswith("float"):
            return None
        return super().compute_mask(inputs, mask)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"reverse_bias": self.reverse_bias})
        return config
