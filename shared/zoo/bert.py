"""A BERT-style encoder (Devlin et al., 2019) with masked-LM and classification heads."""

from __future__ import annotations

from typing import Any

import keras

from shared.blocks import PositionEmbedding, ReversibleEmbedding, TransformerEncoderBlock
from shared.errors import UserError
from shared.zoo.classifier import (
    DROPOUT,
    PREDICTIONS,
    check_choice,
    check_heads,
    check_int,
    check_num_classes,
    check_rank,
    check_rate,
)
from shared.zoo.registry import register_model
from shared.zoo.sequence_inputs import sequence_input

HEADS = ("auto", "none", "classify", "mlm")
# BERT's N(0, 0.02) initialisation of every dense and embedding weight.
INIT = {"stddev": 0.02}


def _check_positions(model: str, input_shape: tuple[int, ...], max_positions: int) -> None:
    if input_shape[0] > max_positions:
        raise UserError(
            f"{model}: a sequence of {input_shape[0]} is longer than the position table "
            f"(max_positions={max_positions})"
        )


@register_model(
    "bert", kind="sequence_classifier", preset_input=(128,), modality=("tokens", "image")
)
def bert(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    num_layers: int = 12,
    hidden: int = 768,
    num_heads: int = 12,
    ff_dim: int = 3072,
    max_positions: int = 512,
    vocab_size: int = 30522,
    type_vocab_size: int = 2,
    dropout: float = 0.1,
    head: str = "auto",
    pooling: str = "cls",
) -> keras.Model:
    """BERT encoder: token + segment + learned position embeddings, post-norm transformer
    layers (GELU), a tanh pooler on the first token, then a head.

    `pooling`: "cls" (BERT's first token) or "mean" (the mean over non-padding tokens
    before the pooler, as Sentence-BERT pools). An encoder pretrained by masked-LM alone
    never trains the first token to summarise the text (BERT's next-sentence task did),
    so "mean" is the better start when fine-tuning such an encoder on few labels.

    `head`: "classify" (softmax over `num_classes` on the pooled output), "mlm" (masked-LM
    logits through the tied token embedding plus a per-token bias), "none" (outputs the
    sequence and the pooled vector) or "auto" (classify if num_classes is given, else none).
    Token inputs are "token_ids" and "segment_ids" of shape (seq_len,); image inputs
    (H, W, C) are read row by row through a Dense row embedding (no segments).
    """
    # === Config ===
    check_rank("bert", input_shape, (1, 3), "(seq_len,) token ids or (H, W, C) images")
    num_layers = check_int("num_layers", num_layers)
    hidden, num_heads = check_heads(hidden, num_heads)
    ff_dim = check_int("ff_dim", ff_dim)
    max_positions = check_int("max_positions", max_positions)
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    type_vocab_size = check_int("type_vocab_size", type_vocab_size)
    dropout = check_rate("dropout", dropout)
    head = check_choice("head", head, HEADS)
    pooling = check_choice("pooling", pooling, ("cls", "mean"))
    if head == "auto":
        head = "none" if num_classes is None else "classify"
    if head == "classify":
        if num_classes is None:
            raise UserError("bert with head='classify' needs num_classes")
        num_classes = check_num_classes(num_classes)
    _check_positions("bert", input_shape, max_positions)
    init = keras.initializers.TruncatedNormal(**INIT)

    # === Layers ===
    blocks = [
        TransformerEncoderBlock(
            num_heads, ff_dim, dropout, norm="post", layer_norm_epsilon=1e-12, name=f"layer_{i}"
        )
        for i in range(num_layers)
    ]
    pooler = keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="pooler")

    # === Functional Model ===
    inputs, x, tokens = sequence_input("bert", input_shape, vocab_size)
    model_inputs: Any = inputs
    mask = None
    token_embedding = None
    if tokens:
        segments = keras.Input(shape=input_shape, dtype="int32", name="segment_ids")
        model_inputs = {"token_ids": inputs, "segment_ids": segments}
        token_embedding = ReversibleEmbedding(
            vocab_size,
            hidden,
            reverse_bias=head == "mlm",
            embeddings_initializer=init,
            name="token_embedding",
        )
        segment_embedding = keras.layers.Embedding(
            type_vocab_size, hidden, embeddings_initializer=init, name="segment_embedding"
        )
        x = keras.layers.Add(name="embeddings_sum")(
            [token_embedding(inputs), segment_embedding(segments)]
        )
        mask = keras.ops.not_equal(inputs, 0)
    else:
        x = keras.layers.Dense(hidden, kernel_initializer=init, name="row_embedding")(x)
    x = PositionEmbedding(max_positions, name="position_embedding")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_norm")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    for block in blocks:
        x = block(x, mask=mask)
    sequence = x
    if not tokens:
        first = keras.layers.GlobalAveragePooling1D(name="row_mean")(sequence)
    elif pooling == "mean":
        first = keras.layers.GlobalAveragePooling1D(name="token_mean")(sequence, mask=mask)
    else:
        first = sequence[:, 0, :]
    pooled = pooler(first)

    if head == "none":
        return keras.Model(model_inputs, {"sequence": sequence, "pooled": pooled}, name="bert")
    if head == "classify":
        x = keras.layers.Dropout(dropout, name=DROPOUT)(pooled)
        outputs = keras.layers.Dense(
            num_classes,
            activation="softmax",
            dtype="float32",
            kernel_initializer=init,
            name=PREDICTIONS,
        )(x)
        return keras.Model(model_inputs, outputs, name="bert")
    if token_embedding is None:
        raise UserError("bert's masked-LM head needs token inputs (input_shape=(seq_len,))")
    x = keras.layers.Dense(
        hidden, activation="gelu", kernel_initializer=init, name="mlm_transform"
    )(sequence)
    x = keras.layers.LayerNormalization(epsilon=1e-12, name="mlm_norm")(x)
    logits = token_embedding(x, reverse=True)
    logits = keras.layers.Activation("linear", dtype="float32", name="mlm_logits")(logits)
    return keras.Model(model_inputs, logits, name="bert")


def _preset(name: str, layers: int, hidden: int, heads: int, paper: str):
    @register_model(
        name,
        kind="sequence_classifier",
        preset_input=(512,),
        preset_options={"head": "none"},
        modality=("tokens", "image"),
    )
    def builder(
        input_shape: tuple[int, ...],
        num_classes: int | None,
        *,
        vocab_size: int = 30522,
        dropout: float = 0.1,
        head: str = "auto",
    ) -> keras.Model:
        return bert(
            input_shape,
            num_classes,
            num_layers=layers,
            hidden=hidden,
            num_heads=heads,
            ff_dim=4 * hidden,
            max_positions=512,
            vocab_size=vocab_size,
            dropout=dropout,
            head=head,
        )

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{paper}: {layers} layers, hidden {hidden}, {heads} heads, 512 positions."
    return builder


bert_tiny = _preset("bert_tiny", 2, 128, 2, "BERT-Tiny (Turc et al., 2019)")
bert_small = _preset("bert_small", 4, 512, 8, "BERT-Small (Turc et al., 2019)")
bert_base = _preset(
    "bert_base",
    12,
    768,
    12,
    "BERT-base: 109,482,240 parameters with vocab 30,522 and the pooler (head none), "
    "Hugging Face's BertModel count",
)
