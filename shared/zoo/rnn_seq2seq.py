"""An RNN encoder-decoder (Sutskever, Vinyals & Le, 2014; Cho et al., 2014)."""

from __future__ import annotations

import keras

from shared.blocks.recurrent_stack import CELLS
from shared.zoo.classifier import check_choice, check_int, check_rank, check_rate
from shared.zoo.registry import register_model


@register_model("rnn_seq2seq", kind="seq2seq", modality="tokens", preset_input=(20,))
def rnn_seq2seq(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    cell: str = "lstm",
    units: int = 256,
    embedding_dim: int = 128,
    source_vocab: int = 8000,
    target_vocab: int = 8000,
    target_length: int = 20,
    dropout: float = 0.0,
) -> keras.Model:
    """Sequence-to-sequence model: an encoder RNN reads the source tokens, its final state
    starts a decoder RNN fed the target shifted right (teacher forcing), and a softmax over
    `target_vocab` predicts each next target token.

    Inputs: "source_ids" (input_shape = (source_length,)) and "target_ids"
    (target_length,); token id 0 is padding. `num_classes` is unused (the target
    vocabulary is the output).
    """
    # === Config ===
    check_rank("rnn_seq2seq", input_shape, (1,), "(source_length,) token ids")
    cell = check_choice("cell", cell, tuple(CELLS))
    units = check_int("units", units)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    source_vocab = check_int("source_vocab", source_vocab, minimum=2)
    target_vocab = check_int("target_vocab", target_vocab, minimum=2)
    target_length = check_int("target_length", target_length)
    dropout = check_rate("dropout", dropout)
    rnn = CELLS[cell]

    # === Layers ===
    source_embedding = keras.layers.Embedding(
        source_vocab, embedding_dim, mask_zero=True, name="source_embedding"
    )
    target_embedding = keras.layers.Embedding(
        target_vocab, embedding_dim, mask_zero=True, name="target_embedding"
    )
    encoder = rnn(units, return_state=True, dropout=dropout, name="encoder")
    decoder = rnn(units, return_sequences=True, dropout=dropout, name="decoder")
    output = keras.layers.Dense(
        target_vocab, activation="softmax", dtype="float32", name="next_token"
    )

    # === Functional Model ===
    source = keras.Input(shape=input_shape, dtype="int32", name="source_ids")
    target = keras.Input(shape=(target_length,), dtype="int32", name="target_ids")
    _, *state = encoder(source_embedding(source))
    x = decoder(target_embedding(target), initial_state=state)
    return keras.Model([source, target], output(x), name="rnn_seq2seq")
