"""A transformer decoder layer: causal self-attention, optional cross-attention, FFN."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks.multi_head_self_attention import MultiHeadSelfAttention
from shared.blocks.quantized_dtype import settle_policies
from shared.blocks.transformer_base import TransformerBlockBase


@keras.saving.register_keras_serializable(package="deepfield")
class TransformerDecoderBlock(TransformerBlockBase):
    """x -> + CausalAttn(x) -> [+ CrossAttn(x, context)] -> + FFN, each residual.

    Without a `context` it is a decoder-only layer (GPT); with one (an encoder's
    output) it is the original transformer's decoder layer. `norm="pre"` (GPT-2)
    puts LayerNorm before each branch, `"post"` after each residual sum.

    Args:
        num_heads: Attention heads (self- and cross-attention).
        ff_dim: Hidden width of the feed-forward net.
        dropout: Dropout on branch outputs and attention probabilities.
        norm: "pre" or "post".
        cross_attention: Whether the layer attends to a `context` sequence.
        activation: Feed-forward activation.
        layer_norm_epsilon: LayerNorm epsilon.
        **kwargs: Base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, time, d) decoder states.
        context: (batch, source_time, d) encoder states; required with cross_attention.
        mask: Optional (batch, time) padding mask of `inputs`.
        context_mask: Optional (batch, source_time) padding mask of `context`.
    """

    def __init__(
        self,
        num_heads: int,
        ff_dim: int,
        dropout: float = 0.0,
        norm: str = "pre",
        cross_attention: bool = False,
        activation: str = "gelu",
        layer_norm_epsilon: float = 1e-5,
        **kwargs: Any,
    ):
        super().__init__(num_heads, ff_dim, dropout, norm, activation, layer_norm_epsilon, **kwargs)
        self.cross_attention = bool(cross_attention)

        # === Layers ===
        common = {"dtype": self.dtype_policy}
        self.self_attention = MultiHeadSelfAttention(
            self.num_heads, self.dropout, causal=True, name="self_attention", **common
        )
        self.self_attention_norm = self._layer_norm("self_attention_norm")
        self.cross_attention_norm = self._layer_norm("cross_attention_norm")
        self.ff_norm = self._layer_norm("ff_norm")
        self.branch_dropout = keras.layers.Dropout(self.dropout, **common)

    def build(self, inputs_shape: tuple[int | None, ...], context_shape: Any = None) -> None:
        input_shape = tuple(inputs_shape)
        dim = int(input_shape[-1])
        self.self_attention.build(input_shape)
        self.self_attention_norm.build(input_shape)
        self.ff_norm.build(input_shape)
        if self.cross_attention:
            self.cross = keras.layers.MultiHeadAttention(
                self.num_heads,
                dim // self.num_heads,
                dropout=self.dropout,
                dtype=self.dtype_policy,
                name="cross_attention",
            )
            self.cross.build(input_shape, context_shape or input_shape)
            self.cross_attention_norm.build(input_shape)
        self._build_feed_forward(input_shape)
        settle_policies(self)  # quantized sublayers of a reloaded model
        self.built = True

    def _branch(self, x: Any, norm: keras.Layer, fn: Any, training: bool | None) -> Any:
        return self._residual(x, norm, self.branch_dropout, fn, training)

    def call(
        self,
        inputs: Any,
        context: Any = None,
        mask: Any = None,
        context_mask: Any = None,
        training: bool | None = None,
    ) -> Any:
        if self.cross_attention and context is None:
            raise ValueError(f"{self.name} has cross_attention=True and needs a context")
        x = self._branch(
            inputs,
            self.self_attention_norm,
            lambda h: self.self_attention(h, mask=mask, training=training),
            training,
        )
        if self.cross_attention:
            attention_mask = None
            if context_mask is not None:
                attention_mask = keras.ops.cast(context_mask, "bool")[:, None, :]
            x = self._branch(
                x,
                self.cross_attention_norm,
                lambda h: self.cross(h, context, attention_mask=attention_mask, training=training),
                training,
            )
        return self._branch(x, self.ff_norm, self._feed_forward, training)

    def compute_output_shape(self, inputs_shape: Any, context_shape: Any = None) -> Any:
        return inputs_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cross_attention": self.cross_attention}
