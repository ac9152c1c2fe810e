"""Deep belief networks (Hinton, Osindero & Teh, 2006): stacked RBMs, greedy CD
pretraining, then supervised fine-tuning of the whole stack as a feed-forward net."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np

from shared.blocks import BernoulliRBM
from shared.blocks.bernoulli_rbm import HIDDEN_UNITS
from shared.errors import UserError
from shared.zoo.classifier import (
    DROPOUT,
    PREDICTIONS,
    PREPROCESS,
    check_choice,
    check_image_classifier,
    check_int,
    check_rate,
)
from shared.zoo.registry import register_model

LOG = logging.getLogger("deepfield.zoo")


@register_model(
    "dbn", kind="image_classifier", preset_input=(28, 28, 1), preset_classes=10, modality="image"
)
def dbn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    hidden: Sequence[int] = (500, 500, 2000),
    units: str = "sigmoid",
    cd_k: int = 1,
    pretrain_epochs: int = 5,
    dropout: float = 0.0,
) -> keras.Model:
    """Deep belief network: pixels scaled to [0, 1], flattened, through stacked Bernoulli RBMs
    (Hinton et al.'s 784-500-500-2000 by default), then a softmax layer.

    `units` is "sigmoid" (binary hidden units) or "relu" (noisy rectified units). Each RBM
    records `pretrain_epochs` and `cd_k`; `greedy_pretrain` trains them bottom-up with CD-k
    before supervised fine-tuning (the vision pipeline runs it; 0 skips pretraining).
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    if isinstance(hidden, int | str) or not isinstance(hidden, Sequence) or not hidden:
        raise UserError(f"option 'hidden' must be a non-empty list of integers, got {hidden!r}")
    hidden = [check_int("hidden", h) for h in hidden]
    units = check_choice("units", units, HIDDEN_UNITS)
    cd_k = check_int("cd_k", cd_k)
    pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, minimum=0)
    dropout = check_rate("dropout", dropout)

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, size in enumerate(hidden):
        x = BernoulliRBM(
            size, hidden=units, cd_k=cd_k, pretrain_epochs=pretrain_epochs, name=f"rbm_{i + 1}"
        )(x)
    x = keras.layers.Dropout(dropout, name=DROPOUT)(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=PREDICTIONS
    )(x)
    return keras.Model(image, outputs, name="dbn")


def rbm_layers(model: keras.Model) -> list[BernoulliRBM]:
    """The model's RBMs, bottom-up."""
    return [layer for layer in model.layers if isinstance(layer, BernoulliRBM)]


def greedy_pretrain(
    model: keras.Model,
    images: np.ndarray,
    *,
    epochs: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> list[float]:
    """Train each RBM of `model` in turn with CD-k on the layer below's activations.

    `images` are raw pixels (0..255), as the model takes them. Returns each RBM's last
    epoch's mean reconstruction error (what falls as an RBM learns). `epochs` defaults
    to what each RBM records (`pretrain_epochs`).
    """
    import tensorflow as tf

    rbms = rbm_layers(model)
    if not rbms:
        return []
    rng = np.random.default_rng(seed)
    below = keras.Model(model.input, model.get_layer("flatten").output)
    data = np.asarray(below.predict(images.astype("float32"), batch_size=256, verbose=0))
    errors = []
    for rbm in rbms:
        rounds = rbm.pretrain_epochs if epochs is None else epochs
        optimizer = keras.optimizers.SGD(learning_rate, momentum=0.5)

        @tf.function
        def step(batch, rbm=rbm, optimizer=optimizer):
            (kernel_grad, hidden_grad, visible_grad), error = rbm.contrastive_divergence(batch)
            optimizer.apply_gradients([(kernel_grad, rbm.kernel), (hidden_grad, rbm.hidden_bias)])
            # The visible bias is not trainable (see BernoulliRBM): plain SGD on it.
            rbm.visible_bias.assign_sub(learning_rate * visible_grad)
            return error

        last = float("nan")
        for epoch in range(rounds):
            order = rng.permutation(len(data))
            batch_errors = [
                float(step(tf.constant(data[order[i : i + batch_size]])))
                for i in range(0, len(data), batch_size)
            ]
            last = float(np.mean(batch_errors))
            LOG.info(
                "pretraining %s: epoch %d/%d, reconstruction error %.4f",
                rbm.name,
                epoch + 1,
                rounds,
                last,
            )
        errors.append(last)
        data = np.asarray(rbm(data))
    return errors
