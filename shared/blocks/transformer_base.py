"""What the transformer encoder and decoder blocks share: their options, the residual
branch around each sublayer (pre- or post-norm) and the position-wise feed-forward net."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from shared.blocks.quantized_dtype import dtype_config

NORM_POSITIONS = ("post", "pre")


class TransformerBlockBase(keras.layers.Layer):
    """Base of `TransformerEncoderBlock` and `TransformerDecoderBlock` (not used alone).

    Args:
        num_heads: Attention heads.
        ff_dim: Hidden width of the feed-forward net.
        dropout: Dropout on each branch's output and on attention probabilities.
        norm: "post" (LayerNorm after each residual sum) or "pre" (before each branch).
        activation: Feed-forward activation.
        layer_norm_epsilon: LayerNorm epsilon.
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        num_heads: int,
        ff_dim: int,
        dropout: float,
        norm: str,
        activation: str,
        layer_norm_epsilon: float,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if norm not in NORM_POSITIONS:
            raise ValueError(f"norm must be one of {NORM_POSITIONS}, got {norm!r}")
        self.num_heads = int(num_heads)
        self.ff_dim = int(ff_dim)
        self.dropout = float(dropout)
        self.norm = norm
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.supports_masking = True

    def _layer_norm(self, name: str) -> keras.layers.LayerNormalization:
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name=name, dtype=self.dtype_policy
        )

    def _build_feed_forward(self, input_shape: tuple[int | None, ...]) -> None:
        """ff_hidden (ff_dim, activation) then ff_output back to the input width."""
        self.ff_hidden = keras.layers.Dense(
            self.ff_dim, activation=self.activation, dtype=self.dtype_policy, name="ff_hidden"
        )
        self.ff_hidden.build(input_shape)
        self.ff_output = keras.layers.Dense(
            int(input_shape[-1]), dtype=self.dtype_policy, name="ff_output"
        )
        self.ff_output.build((*input_shape[:-1], self.ff_dim))

    def _feed_forward(self, x: Any) -> Any:
        return self.ff_output(self.ff_hidden(x))

    def _residual(
        self,
        x: Any,
        norm: keras.Layer,
        dropout: keras.Layer,
        sublayer: Callable[[Any], Any],
        training: bool | None,
    ) -> Any:
        """x + dropout(sublayer(norm(x))) ("pre"), or norm(x + dropout(sublayer(x)))."""
        if self.norm == "pre":
            return x + dropout(sublayer(norm(x)), training=training)
        return norm(x + dropout(sublayer(x), training=training))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = dtype_config(self)  # quantized sublayers reload quantized
        config.update(
            {
                "num_heads": self.num_heads,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
                "norm": self.norm,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
