"""A transformer encoder layer: self-attention and a feed-forward net, each residual."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.multi_head_self_attention import MultiHeadSelfAttention
from shared.blocks.quantized_dtype import settle_policies
from shared.blocks.transformer_base import TransformerBlockBase


@keras.saving.register_keras_serializable(package="deepfield")
class TransformerEncoderBlock(TransformerBlockBase):
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
        super().__init__(num_heads, ff_dim, dropout, norm, activation, layer_norm_epsilon, **kwargs)
        self.causal = bool(causal)

        # === Layers ===
        common = {"dtype": self.dtype_policy}
        self.attention = MultiHeadSelfAttention(
            self.num_heads, self.dropout, causal=self.causal, name="attention", **common
        )
        self.attention_norm = self._layer_norm("attention_norm")
        self.ff_norm = self._layer_norm("ff_norm")
        self.ff_dropout = keras.layers.Dropout(self.dropout, **common)
        self.attention_dropout = keras.layers.Dropout(self.dropout, **common)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ff_norm.build(input_shape)
        self._build_feed_forward(input_shape)
        settle_policies(self)  # quantized sublayers of a reloaded model
        self.built = True

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        x = self._residual(
            inputs,
            self.attention_norm,
            self.attention_dropout,
            lambda h: self.attention(h, mask=mask, training=training),
            training,
        )
        return self._residual(x, self.ff_norm, self.ff_dropout, self._feed_forward, training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "causal": self.causal}
