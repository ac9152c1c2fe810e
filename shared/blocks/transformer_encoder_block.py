"""A transformer encoder layer: self-attention and a feed-forward net, each residual."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.multi_head_self_attention import MultiHeadSelfAttention

NORM_POSITIONS = ("post", "pre")


@keras.saving.register_keras_serializable(package="deepfield")
class TransformerEncoderBlock(keras.layers.Layer):
    """x -> x + Attn(x) -> + FFN, with LayerNorm after ("post", BERT and the original
    transformer) or before ("pre", GPT-2 and most deep stacks, which train without
    warm-up tricks) each residual branch.

    Args:
        num_heads: Attention heads.
        ff_dim: Hidden width of the feed-forward net (4 x width in BERT and GPT).
        dropout: Dropout on each branch's output and on attention probabilities.
        norm: "post" or "pre".
        causal: Causal self-attention (a decoder-only stack like GPT uses this block).
        activation: Feed-forward activation ("gelu" in BERT/GPT, "relu" originally).
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in BERT, 1e-5 in GPT-2).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        num_heads: int,
        ff_dim: int,
        dropout: float = 0.0,
        norm: str = "post",
        causal: bool = False,
        activation: str = "gelu",
        layer_norm_epsilon: float = 1e-5,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if norm not in NORM_POSITIONS:
            raise ValueError(f"norm must be one of {NORM_POSITIONS}, got {norm!r}")
        self.num_heads = int(num_heads)
        self.ff_dim = int(ff_dim)
        self.dropout = float(dropout)
        self.norm = norm
        self.causal = bool(causal)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.supports_masking = True

        # === Layers ===
        common = {"dtype": self.dtype_policy}
        self.attention = MultiHeadSelfAttention(
            self.num_heads, self.dropout, causal=self.causal, name="attention", **common
        )
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", **common
        )
        self.ff_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="ff_norm", **common
        )
        self.ff_dropout = keras.layers.Dropout(self.dropout, **common)
        self.attention_dropout = keras.layers.Dropout(self.dropout, **common)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        dim = int(input_shape[-1])
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ff_norm.build(input_shape)
        self.ff_hidden = keras.layers.Dense(
            self.ff_dim, activation=self.activation, dtype=self.dtype_policy, name="ff_hidden"
        )
        self.ff_hidden.build(input_shape)
        self.ff_output = keras.layers.Dense(dim, dtype=self.dtype_policy, name="ff_output")
        self.ff_output.build((*input_shape[:-1], self.ff_dim))
        self.built = True

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        x = inputs
        if self.norm == "pre":
            h = self.attention(self.attention_norm(x), mask=mask, training=training)
            x = x + self.attention_dropout(h, training=training)
            h = self.ff_output(self.ff_hidden(self.ff_norm(x)))
            return x + self.ff_dropout(h, training=training)
        h = self.attention(x, mask=mask, training=training)
        x = self.attention_norm(x + self.attention_dropout(h, training=training))
        h = self.ff_output(self.ff_hidden(x))
        return self.ff_norm(x + self.ff_dropout(h, training=training))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
                "norm": self.norm,
                "causal": self.causal,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
