"""Finance models over the encoded feature vector.

- `mlp`: dense layers to one logit (fraud or default); trained with class weights or
  focal loss.
- `autoencoder`: learns to reconstruct normal transactions only; its reconstruction
  error is the anomaly score (calibrated to a probability on the validation split).
- `sequence`: the zoo's `RecurrentStack` (GRU, LSTM or simple RNN) over a customer's
  previous transactions, the current one last, to one logit.

Classifier heads output logits, so attributions (integrated gradients) work on the
log-odds that the scorecard turns into points.
"""

from __future__ import annotations

import keras

from domains.finance.config import FinanceConfig
from shared.blocks import RecurrentStack


def _dense_stack(x, hidden: list[int], dropout: float, l2: float, prefix: str):
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for index, units in enumerate(hidden):
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=regularizer,
            name=f"{prefix}_dense_{index + 1}",
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout_{index + 1}")(x)
    return x


def build_mlp(width: int, config: FinanceConfig) -> keras.Model:
    """Encoded row (width,) -> logit (1,)."""
    inputs = keras.Input((width,), name="encoded")
    x = _dense_stack(inputs, config.model.hidden, config.model.dropout, config.model.l2, "mlp")
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logit, name=f"{config.task}_mlp")


def build_autoencoder(width: int, config: FinanceConfig) -> keras.Model:
    """Encoded row -> bottleneck -> reconstructed row."""
    inputs = keras.Input((width,), name="encoded")
    x = _dense_stack(inputs, config.model.hidden, 0.0, config.model.l2, "encoder")
    code = keras.layers.Dense(config.model.latent, activation="relu", name="bottleneck")(x)
    x = _dense_stack(code, list(reversed(config.model.hidden)), 0.0, config.model.l2, "decoder")
    outputs = keras.layers.Dense(width, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"{config.task}_autoencoder")


def build_sequence_model(width: int, config: FinanceConfig) -> keras.Model:
    """(history, width) encoded transactions, zero rows for padding -> logit."""
    seq = config.model.sequence
    inputs = keras.Input((seq.history, width), name="history")
    x = keras.layers.Masking(mask_value=0.0, name="padding_mask")(inputs)
    x = RecurrentStack(
        cell=seq.cell,
        units=seq.units,
        num_layers=seq.num_layers,
        bidirectional=seq.bidirectional,
        dropout=config.model.dropout,
        pooling=seq.pooling,
        name="recurrent",
    )(x)
    x = _dense_stack(x, config.model.hidden[-1:], config.model.dropout, config.model.l2, "head")
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logit, name=f"{config.task}_sequence")


def build_model(width: int, config: FinanceConfig) -> keras.Model:
    builders = {
        "mlp": build_mlp,
        "autoencoder": build_autoencoder,
        "sequence": build_sequence_model,
    }
    return builders[config.model.name](width, config)


def compile_model(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, config: FinanceConfig
) -> None:
    """Logit models: weighted BCE or focal loss, with PR-AUC and ROC-AUC; autoencoder: MSE."""
    if config.model.name == "autoencoder":
        model.compile(optimizer=optimizer, loss="mse", jit_compile=config.train.jit)
        return
    if config.imbalance.loss == "focal":
        loss = keras.losses.BinaryFocalCrossentropy(
            gamma=config.imbalance.focal_gamma, from_logits=True
        )
    else:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=[
            keras.metrics.AUC(curve="PR", from_logits=True, name="pr_auc"),
            keras.metrics.AUC(curve="ROC", from_logits=True, name="roc_auc"),
        ],
        jit_compile=config.train.jit,
    )
