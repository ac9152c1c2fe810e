"""A GPT-style decoder-only language model (Radford et al., 2019: GPT-2)."""

from __future__ import annotations

import keras

from shared.blocks import PositionEmbedding, ReversibleEmbedding, TransformerDecoderBlock
from shared.errors import UserError
from shared.zoo.classifier import check_bool, check_heads, check_int, check_rank, check_rate
from shared.zoo.registry import register_model

INIT = {"stddev": 0.02}


@register_model("gpt", kind="language_model", modality="tokens", preset_input=(128,))
def gpt(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    num_layers: int = 12,
    hidden: int = 768,
    num_heads: int = 12,
    max_positions: int = 1024,
    vocab_size: int = 50257,
    dropout: float = 0.1,
    tie_embeddings: bool = True,
) -> keras.Model:
    """GPT decoder: token + learned position embeddings, pre-norm causal transformer layers
    (GELU, 4x feed-forward), a final LayerNorm and next-token logits through the tied token
    embedding (GPT-2 ties them; `tie_embeddings=False` adds a separate output matrix).

    Input "token_ids" of shape (seq_len,), at most `max_positions` long; output logits
    (seq_len, vocab_size). `num_classes` is unused.
    """
    # === Config ===
    check_rank("gpt", input_shape, (1,), "(seq_len,) token ids")
    num_layers = check_int("num_layers", num_layers)
    hidden, num_heads = check_heads(hidden, num_heads)
    max_positions = check_int("max_positions", max_positions)
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    dropout = check_rate("dropout", dropout)
    tie_embeddings = check_bool("tie_embeddings", tie_embeddings)
    if input_shape[0] > max_positions:
        raise UserError(
            f"gpt: a sequence of {input_shape[0]} is longer than the position table "
            f"(max_positions={max_positions})"
        )
    init = keras.initializers.TruncatedNormal(**INIT)

    # === Layers ===
    token_embedding = ReversibleEmbedding(
        vocab_size, hidden, embeddings_initializer=init, name="token_embedding"
    )
    blocks = [
        TransformerDecoderBlock(num_heads, 4 * hidden, dropout, norm="pre", name=f"layer_{i}")
        for i in range(num_layers)
    ]

    # === Functional Model ===
    tokens = keras.Input(shape=input_shape, dtype="int32", name="token_ids")
    x = PositionEmbedding(max_positions, initializer=init, name="position_embedding")(
        token_embedding(tokens)
    )
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    for block in blocks:
        x = block(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    if tie_embeddings:
        logits = token_embedding(x, reverse=True)
    else:
        logits = keras.layers.Dense(
            vocab_size, use_bias=False, kernel_initializer=init, name="lm_head"
        )(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(tokens, logits, name="gpt")


def _preset(name: str, layers: int, hidden: int, heads: int, paper: str):
    @register_model(name, kind="language_model", modality="tokens", preset_input=(1024,))
    def builder(
        input_shape: tuple[int, ...],
        num_classes: int | None,
        *,
        vocab_size: int = 50257,
        dropout: float = 0.1,
    ) -> keras.Model:
        return gpt(
            input_shape,
            num_classes,
            num_layers=layers,
            hidden=hidden,
            num_heads=heads,
            max_positions=1024,
            vocab_size=vocab_size,
            dropout=dropout,
        )

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"{paper}: {layers} layers, hidden {hidden}, {heads} heads, 1024 positions, tied."
    )
    return builder


gpt_tiny = _preset("gpt_tiny", 2, 128, 2, "A tiny GPT for tests and demos")
gpt_small = _preset(
    "gpt_small", 12, 768, 12, "GPT-2 small: 124,439,808 parameters with vocab 50,257"
)
gpt_medium = _preset("gpt_medium", 24, 1024, 16, "GPT-2 medium: 354,823,168 parameters")
