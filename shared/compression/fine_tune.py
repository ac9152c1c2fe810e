"""The callbacks that turn a domain's ordinary `fit` into a compression fine-tune.

`compression_callbacks` returns the factory `shared.training.trainer.added_callbacks`
takes: for each `fit` of the domain's training it starts the model from the original
weights (`StartFrom`, pruning only), attaches the distillation loss (a student) and adds
the pruning callback.
"""

from __future__ import annotations

import keras

from shared.compression import distillation
from shared.compression.pruning import MagnitudePruning
from shared.errors import UserError


class StartFrom(keras.callbacks.Callback):
    """Set the model's weights to `source`'s when the first fit begins (a resumed fit's
    checkpoint, restored after this, then wins)."""

    def __init__(self, source: keras.Model):
        super().__init__()
        self.weights = source.get_weights()
        self.done = False

    def on_train_begin(self, logs=None):
        if self.done:
            return
        try:
            self.model.set_weights(self.weights)
        except ValueError as err:
            raise UserError(
                f"the run's model.keras does not match the model its config builds ({err})"
            ) from None
        self.done = True


def compression_callbacks(
    *,
    start_from: keras.Model | None = None,
    prune: float | None = None,
    teacher: keras.Model | None = None,
    alpha: float = 0.1,
    temperature: float = 4.0,
):
    """The factory `added_callbacks` takes: model -> the callbacks for its fit."""
    start = StartFrom(start_from) if start_from is not None else None
    pruning = MagnitudePruning(prune) if prune is not None else None

    def make(model: keras.Model) -> list[keras.callbacks.Callback]:
        if teacher is not None and getattr(model, "distillation", None) is None:
            distillation.attach(model, teacher, alpha=alpha, temperature=temperature)
        return [c for c in (start, pruning) if c is not None]

    return make
