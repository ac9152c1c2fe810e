"""Stacked SimpleRNN / LSTM / GRU layers, optionally bidirectional, with a pooling over time."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

CELLS: dict[str, type] = {
    "simple": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}
POOLINGS = ("last", "mean", "attention", "none")


@keras.saving.register_keras_serializable(package="deepfield")
class RecurrentStack(keras.layers.Layer):
    """(batch, time, features) -> (batch, units * directions), or the whole sequence.

    `num_layers` recurrent layers of one cell type, each returning its full sequence to
    the next; the last one's sequence is then pooled over time:

    - "last": the final state (the last *unmasked* step; for a bidirectional stack the
      forward final state beside the backward one, which has read back to step 0),
    - "mean": the mean over unmasked steps,
    - "attention": a learned softmax over time (Bahdanau-style additive scoring,
      `v . tanh(W h_t)`) with masked steps given zero weight, then the weighted sum,
    - "none": the sequence itself, (batch, time, units * directions), mask kept.

    Masks from upstream layers (`Embedding(mask_zero=True)`, `Masking`) are passed to
    every recurrent layer and respected by the pooling, so padded transactions or
    tokens change nothing.

    Args:
        cell: "gru", "lstm" or "simple" (SimpleRNN).
        units: Hidden units per direction.
        num_layers: Number of stacked recurrent layers.
        bidirectional: Run each layer both ways and concatenate the two.
        dropout: Dropout on each recurrent layer's inputs (Keras' RNN `dropout`).
        pooling: "last", "mean", "attention" or "none" (see above).
        attention_units: Width of the attention scorer's hidden layer (default `units`).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        cell: str = "gru",
        units: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        attention_units: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if int(units) < 1 or int(num_layers) < 1:
            raise ValueError(f"units and num_layers must be >= 1, got {units}, {num_layers}")
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.attention_units = int(attention_units or units)
        self.supports_masking = True
        self.directions = 2 if self.bidirectional else 1

        # === Layers ===
        self.rnns: list[keras.Layer] = []
        for index in range(self.num_layers):
            # Only the last layer may drop the sequence, and only for "last" pooling.
            sequences = index < self.num_layers - 1 or pooling != "last"
            rnn = CELLS[cell](
                self.units,
                return_sequences=sequences,
                dropout=self.dropout,
                dtype=self.dtype_policy,
                name=f"{cell}_{index + 1}",
            )
            if self.bidirectional:
                rnn = keras.layers.Bidirectional(
                    rnn, dtype=self.dtype_policy, name=f"bidirectional_{index + 1}"
                )
            self.rnns.append(rnn)
        if pooling == "attention":
            self.score_hidden = keras.layers.Dense(
                self.attention_units,
                activation="tanh",
                dtype=self.dtype_policy,
                name="score_hidden",
            )
            self.score = keras.layers.Dense(
                1, use_bias=False, dtype=self.dtype_policy, name="score"
            )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = tuple(input_shape)
        for rnn in self.rnns:
            rnn.build(shape)
            shape = tuple(rnn.compute_output_shape(shape))
        if self.pooling == "attention":
            self.score_hidden.build(shape)
            self.score.build((*shape[:-1], self.attention_units))
        self.built = True

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        x = inputs
        for rnn in self.rnns:
            x = rnn(x, mask=mask, training=training)
        if self.pooling in ("last", "none"):
            return x
        weights = None if mask is None else ops.cast(mask, x.dtype)[..., None]
        if self.pooling == "mean":
            if weights is None:
                return ops.mean(x, axis=1)
            total = ops.sum(x * weights, axis=1)
            return total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        scores = self.score(self.score_hidden(x))  # (batch, time, 1)
        if mask is not None:
            # A large negative (not -inf) keeps an all-masked row finite.
            scores = ops.where(ops.cast(weights, "bool"), scores, ops.cast(-1e9, scores.dtype))
        attention = ops.softmax(scores, axis=1)
        return ops.sum(attention * x, axis=1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        # Only a sequence output keeps its time axis, and so its mask.
        return mask if self.pooling == "none" else None

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        width = self.units * self.directions
        if self.pooling == "none":
            return (input_shape[0], input_shape[1], width)
        return (input_shape[0], width)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "cell": self.cell,
                "units": self.units,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
                "pooling": self.pooling,
                "attention_units": self.attention_units,
            }
        )
        return config
