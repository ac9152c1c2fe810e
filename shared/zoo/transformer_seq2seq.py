"""A transformer encoder-decoder (Vaswani et al., 2017: "Attention Is All You Need")."""

from __future__ import annotations

import keras
from keras import ops

from shared.blocks import PositionEmbedding, TransformerDecoderBlock, TransformerEncoderBlock
from shared.zoo.classifier import check_heads, check_int, check_rank, check_rate
from shared.zoo.registry import register_model

# GPT-2's N(0, 0.02) initialisation of the token and position tables.
INIT = {"stddev": 0.02}


@register_model("transformer_seq2seq", kind="seq2seq", modality="tokens", preset_input=(20,))
def transformer_seq2seq(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    num_layers: int = 6,
    hidden: int = 512,
    num_heads: int = 8,
    ff_dim: int = 2048,
    source_vocab: int = 8000,
    target_vocab: int = 8000,
    target_length: int = 20,
    dropout: float = 0.1,
) -> keras.Model:
    """Sequence-to-sequence transformer: token + learned position embeddings on each side,
    `num_layers` pre-norm encoder layers over the source, `num_layers` pre-norm decoder
    layers (causal self-attention, cross-attention to the encoder's output) over the target
    shifted right (teacher forcing), and a softmax over `target_vocab` per position.

    Inputs: "source_ids" (input_shape = (source_length,)) and "target_ids"
    (target_length,); token id 0 is padding, masked in every attention. The defaults are
    the paper's base model. `num_classes` is unused (the target vocabulary is the output).
    Layers are named (`encoder_layer_i`, `decoder_layer_i`, `next_token`) so decoding and
    attention maps can re-run parts of the model.
    """
    # === Config ===
    check_rank("transformer_seq2seq", input_shape, (1,), "(source_length,) token ids")
    num_layers = check_int("num_layers", num_layers)
    hidden, num_heads = check_heads(hidden, num_heads)
    ff_dim = check_int("ff_dim", ff_dim)
    source_vocab = check_int("source_vocab", source_vocab, minimum=2)
    target_vocab = check_int("target_vocab", target_vocab, minimum=2)
    target_length = check_int("target_length", target_length)
    dropout = check_rate("dropout", dropout)
    init = keras.initializers.TruncatedNormal(**INIT)

    # === Layers ===
    def embedding(vocab: int, length: int, side: str) -> list[keras.Layer]:
        return [
            keras.layers.Embedding(
                vocab, hidden, embeddings_initializer=init, name=f"{side}_embedding"
            ),
            PositionEmbedding(length, initializer=init, name=f"{side}_positions"),
            keras.layers.Dropout(dropout, name=f"{side}_dropout"),
        ]

    source_layers = embedding(source_vocab, input_shape[0], "source")
    target_layers = embedding(target_vocab, target_length, "target")
    encoder = [
        TransformerEncoderBlock(num_heads, ff_dim, dropout, norm="pre", name=f"encoder_layer_{i}")
        for i in range(num_layers)
    ]
    decoder = [
        TransformerDecoderBlock(
            num_heads, ff_dim, dropout, norm="pre", cross_attention=True, name=f"decoder_layer_{i}"
        )
        for i in range(num_layers)
    ]
    # Pre-norm stacks end unnormalised: each side gets a final LayerNorm.
    encoder_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
    decoder_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")
    output = keras.layers.Dense(
        target_vocab, activation="softmax", dtype="float32", name="next_token"
    )

    # === Functional Model ===
    source = keras.Input(shape=input_shape, dtype="int32", name="source_ids")
    target = keras.Input(shape=(target_length,), dtype="int32", name="target_ids")
    # Padding (id 0) masks are passed to each block explicitly rather than carried by
    # Keras' implicit mask propagation, so code that re-runs a block (attention maps)
    # gives it the same masks the model did.
    source_mask = ops.not_equal(source, 0)
    target_mask = ops.not_equal(target, 0)
    x = source
    for layer in source_layers:
        x = layer(x)
    for block in encoder:
        x = block(x, mask=source_mask)
    context = encoder_norm(x)
    y = target
    for layer in target_layers:
        y = layer(y)
    for block in decoder:
        y = block(y, context=context, mask=target_mask, context_mask=source_mask)
    return keras.Model([source, target], output(decoder_norm(y)), name="transformer_seq2seq")
