"""Multi-head scaled dot-product self-attention with one fused QKV projection."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.blocks.quantized_dtype import dtype_config, settle_policies


@keras.saving.register_keras_serializable(package="deepfield")
class MultiHeadSelfAttention(keras.layers.Layer):
    """softmax(Q K^T / sqrt(d_head) + mask) V over `num_heads` heads, then a projection.

    Q, K and V come from one (d, 3d) matmul instead of three (d, d) ones: the same
    parameters as the paper's three projections (GPT-2's `c_attn` is exactly this), one
    larger GEMM instead of three small ones. The attention is two einsums with the
    queries pre-scaled and a float32 softmax; on CPU this trains faster than both
    `keras.layers.MultiHeadAttention` and `keras.ops.dot_product_attention`
    (benchmarks/zoo_speed.py).

    Args:
        num_heads: Number of heads; the model width must be a multiple of it.
        dropout: Dropout on the attention probabilities.
        causal: Mask future positions (decoders, language models).
        use_bias: Biases on the projections (the paper, BERT and GPT-2 have them).
        kernel_initializer: Initializer of the projection kernels.
        **kwargs: Base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: (batch, time, d).
        mask: Optional (batch, time) boolean padding mask (True = attend); Keras passes
            an upstream layer's mask here automatically.
    """

    def __init__(
        self,
        num_heads: int,
        dropout: float = 0.0,
        causal: bool = False,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.causal = bool(causal)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        dim = int(input_shape[-1])
        if dim % self.num_heads:
            raise ValueError(f"width {dim} is not a multiple of num_heads={self.num_heads}")
        self.head_dim = dim // self.num_heads
        self.qkv = keras.layers.Dense(
            3 * dim,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="qkv",
        )
        self.qkv.build(input_shape)
        self.output_dense = keras.layers.Dense(
            dim,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build(input_shape)
        settle_policies(self)  # quantized sublayers of a reloaded model
        self.built = True

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        probs, value = self._attend(inputs, mask)
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        probs = self.attention_dropout(ops.cast(probs, value.dtype), training=training)
        context = ops.einsum("bhqk,bkhd->bqhd", probs, value)
        context = ops.reshape(context, (batch, length, self.num_heads * self.head_dim))
        return self.output_dense(context)

    def attention_probabilities(self, inputs: Any, mask: Any = None) -> Any:
        """The (batch, heads, query, key) float32 attention weights `call` uses (before
        dropout): what an attention-map explanation shows."""
        return self._attend(inputs, mask)[0]

    def _attend(self, inputs: Any, mask: Any) -> tuple[Any, Any]:
        """(float32 attention probabilities, the per-head values) of `inputs`."""
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        heads = (batch, length, self.num_heads, self.head_dim)
        query, key, value = (
            ops.reshape(part, heads) for part in ops.split(self.qkv(inputs), 3, axis=-1)
        )
        # Scaling the queries costs (time x d); scaling the scores would cost (time^2 x heads).
        query = query * ops.cast(1.0 / self.head_dim**0.5, query.dtype)
        scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
        attend = None if mask is None else ops.cast(mask, "bool")[:, None, None, :]
        allowed = self._allowed(length, attend)
        if allowed is not None:
            # A large negative, not -inf: a fully masked row stays finite (uniform).
            scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
        return ops.softmax(ops.cast(scores, "float32"), axis=-1), value

    def _allowed(self, length: Any, attend: Any) -> Any:
        """(batch|1, 1, q, k) booleans of the pairs that may attend, or None for all."""
        allowed = attend
        if self.causal:
            causal = ops.tril(ops.ones((length, length), "bool"))[None, None]
            allowed = causal if allowed is None else ops.logical_and(allowed, causal)
        return allowed

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = dtype_config(self)  # quantized sublayers reload quantized
        config.update(
            {
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "causal": self.causal,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
