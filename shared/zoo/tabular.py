"""Networks over tables: one encoded row, or a history of encoded rows, per example.

The input is a float vector a preprocessor made from a table's columns (finance's
FeatureSpace: normalised numbers, one-hot categories), so these models do no
preprocessing of their own. Classifiers output logits (one for two classes), because
attributions (integrated gradients) and calibration work on the log-odds.

- `tabular_mlp`: dense ReLU layers (L2, dropout) to the logits.
- `tabular_autoencoder`: dense layers to a bottleneck and back to the row; trained on
  normal rows only, its reconstruction error is an anomaly score.
- `tabular_sequence`: a `RecurrentStack` over (history, features) rows, all-zero rows
  being padding, then a dense head to the logits (a customer's transactions, current
  last).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from shared.blocks import RecurrentStack
from shared.blocks.recurrent_stack import CELLS, POOLINGS
from shared.errors import UserError
from shared.zoo.classifier import (
    check_bool,
    check_choice,
    check_int,
    check_int_list,
    check_rank,
    check_rate,
)
from shared.zoo.registry import register_model

# Options a finance config's defaults correspond to (the listing builds at these).
FEATURES = 30  # e.g. the Kaggle credit-card fraud table: Time, V1..V28, Amount
HISTORY = 8


def check_l2(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UserError(f"option 'l2' must be a number >= 0, got {value!r}")
    return float(value)


def logit_units(num_classes: int | None) -> int:
    """One logit for a binary task (num_classes None or 2), else one per class."""
    return 1 if num_classes in (None, 2) else int(num_classes)


def dense_stack(x: Any, units: list[int], dropout: float, l2: float, prefix: str) -> Any:
    """ReLU Dense layers `{prefix}_dense_{i}`, each followed by dropout when `dropout` > 0."""
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for index, width in enumerate(units):
        x = keras.layers.Dense(
            width,
            activation="relu",
            kernel_regularizer=regularizer,
            name=f"{prefix}_dense_{index + 1}",
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout_{index + 1}")(x)
    return x


@register_model(
    "tabular_mlp",
    kind="tabular_classifier",
    modality="table",
    preset_input=(FEATURES,),
    preset_classes=2,
    loss="binary_crossentropy_from_logits",
)
def tabular_mlp(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (64, 32),
    dropout: float = 0.2,
    l2: float = 1e-4,
) -> keras.Model:
    """Multilayer perceptron over an encoded table row (features,): `hidden` ReLU layers
    with L2 weight decay and dropout, to one logit (two classes) or one per class."""
    # === Config ===
    check_rank("tabular_mlp", input_shape, (1,), "(features,)")
    hidden = check_int_list("hidden", hidden, allow_empty=True)
    dropout, l2 = check_rate("dropout", dropout), check_l2(l2)

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="encoded")
    x = dense_stack(inputs, hidden, dropout, l2, "mlp")
    logits = keras.layers.Dense(logit_units(num_classes), name="logit")(x)
    return keras.Model(inputs, logits, name="tabular_mlp")


@register_model(
    "tabular_autoencoder",
    kind="autoencoder",
    modality="table",
    preset_input=(FEATURES,),
    loss="mean_squared_error",
)
def tabular_autoencoder(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (32, 16),
    latent: int = 8,
    l2: float = 1e-4,
) -> keras.Model:
    """Dense autoencoder over an encoded table row: `hidden` ReLU layers to a ReLU
    bottleneck of `latent` units, mirrored back to a linear reconstruction of the row."""
    # === Config ===
    check_rank("tabular_autoencoder", input_shape, (1,), "(features,)")
    hidden = check_int_list("hidden", hidden, allow_empty=True)
    latent, l2 = check_int("latent", latent), check_l2(l2)

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="encoded")
    x = dense_stack(inputs, hidden, 0.0, l2, "encoder")
    code = keras.layers.Dense(latent, activation="relu", name="bottleneck")(x)
    x = dense_stack(code, list(reversed(hidden)), 0.0, l2, "decoder")
    outputs = keras.layers.Dense(input_shape[0], name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="tabular_autoencoder")


@register_model(
    "tabular_sequence",
    kind="sequence_classifier",
    modality="sequence",
    preset_input=(HISTORY, FEATURES),
    preset_classes=2,
    loss="binary_crossentropy_from_logits",
)
def tabular_sequence(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    cell: str = "gru",
    units: int = 32,
    num_layers: int = 1,
    bidirectional: bool = False,
    pooling: str = "last",
    hidden: Sequence[int] = (32,),
    dropout: float = 0.2,
    l2: float = 1e-4,
) -> keras.Model:
    """Recurrent classifier over a history of encoded rows (history, features), oldest
    first, all-zero rows masked as padding: a `RecurrentStack` (gru/lstm/simple, stacked,
    optionally bidirectional, pooled), then `hidden` ReLU layers to the logits."""
    # === Config ===
    check_rank("tabular_sequence", input_shape, (2,), "(history, features)")
    cell = check_choice("cell", cell, tuple(CELLS))
    units, num_layers = check_int("units", units), check_int("num_layers", num_layers)
    bidirectional = check_bool("bidirectional", bidirectional)
    pooling = check_choice("pooling", pooling, tuple(p for p in POOLINGS if p != "none"))
    hidden = check_int_list("hidden", hidden, allow_empty=True)
    dropout, l2 = check_rate("dropout", dropout), check_l2(l2)

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="history")
    x = keras.layers.Masking(mask_value=0.0, name="padding_mask")(inputs)
    x = RecurrentStack(
        cell=cell,
        units=units,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        pooling=pooling,
        name="recurrent",
    )(x)
    x = dense_stack(x, hidden, dropout, l2, "head")
    logits = keras.layers.Dense(logit_units(num_classes), name="logit")(x)
    return keras.Model(inputs, logits, name="tabular_sequence")
