"""Recurrent sequence classifiers: SimpleRNN (Elman, 1990), LSTM (Hochreiter & Schmidhuber,
1997) and GRU (Cho et al., 2014), built on the shared `RecurrentStack`."""

from __future__ import annotations

import keras

from shared.blocks import RecurrentStack
from shared.blocks.recurrent_stack import CELLS, POOLINGS
from shared.errors import UserError
from shared.zoo.classifier import (
    DROPOUT,
    PREDICTIONS,
    check_bool,
    check_choice,
    check_int,
    check_num_classes,
    check_rate,
)
from shared.zoo.registry import register_model
from shared.zoo.sequence_inputs import sequence_input, token_embedding


def _rnn(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    cell: str,
    units: int,
    num_layers: int,
    bidirectional: bool,
    pooling: str,
    dropout: float,
    vocab_size: int,
    embedding_dim: int,
) -> keras.Model:
    # === Config ===
    if num_classes is None:
        raise UserError(f"{name} is a classifier: num_classes is required")
    num_classes = check_num_classes(num_classes)
    cell = check_choice("cell", cell, tuple(CELLS))
    units = check_int("units", units)
    num_layers = check_int("num_layers", num_layers)
    bidirectional = check_bool("bidirectional", bidirectional)
    pooling = check_choice("pooling", pooling, tuple(p for p in POOLINGS if p != "none"))
    dropout = check_rate("dropout", dropout)
    embedding_dim = check_int("embedding_dim", embedding_dim)

    # === Functional Model ===
    inputs, x, tokens = sequence_input(name, input_shape, vocab_size)
    if tokens:
        x = token_embedding(x, vocab_size, embedding_dim)
    x = RecurrentStack(
        cell,
        units,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        pooling=pooling,
        name="encoder",
    )(x)
    x = keras.layers.Dropout(dropout, name=DROPOUT)(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=PREDICTIONS
    )(x)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "rnn",
    kind="sequence_classifier",
    preset_input=(28, 28, 1),
    preset_classes=10,
    modality=("image", "tokens", "sequence"),
)
def rnn(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    cell: str = "lstm",
    units: int = 128,
    num_layers: int = 1,
    bidirectional: bool = False,
    pooling: str = "last",
    dropout: float = 0.0,
    vocab_size: int = 20000,
    embedding_dim: int = 128,
) -> keras.Model:
    """Recurrent classifier over tokens (seq_len,), vectors (time, features) or image rows
    (H, W, C): `cell` gru/lstm/simple, stacked, optionally bidirectional, pooled by the last
    state, the mean or attention.

    `vocab_size` and `embedding_dim` apply to token inputs only.
    """
    return _rnn(
        "rnn",
        input_shape,
        num_classes,
        cell=cell,
        units=units,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=pooling,
        dropout=dropout,
        vocab_size=vocab_size,
        embedding_dim=embedding_dim,
    )


def _preset(cell: str, name: str, paper: str):
    @register_model(
        name,
        kind="sequence_classifier",
        preset_input=(28, 28, 1),
        preset_classes=10,
        modality=("image", "tokens", "sequence"),
    )
    def builder(
        input_shape: tuple[int, ...],
        num_classes: int | None,
        *,
        units: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
        dropout: float = 0.0,
        vocab_size: int = 20000,
        embedding_dim: int = 128,
    ) -> keras.Model:
        return _rnn(
            name,
            input_shape,
            num_classes,
            cell=cell,
            units=units,
            num_layers=num_layers,
            bidirectional=bidirectional,
            pooling=pooling,
            dropout=dropout,
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
        )

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"{paper} classifier over tokens, vectors or image rows (MNIST row by row at its "
        "preset: 28 steps of 28 pixels), as `rnn` with the cell fixed."
    )
    return builder


simple_rnn = _preset("simple", "simple_rnn", "SimpleRNN (Elman)")
lstm = _preset("lstm", "lstm", "LSTM")
gru = _preset("gru", "gru", "GRU")
