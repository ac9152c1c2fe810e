"""Finance models over the encoded feature vector, built by the zoo (`shared/zoo/tabular.py`).

- `mlp` (`tabular_mlp`): dense layers to one logit (fraud or default); trained with
  class weights or focal loss.
- `autoencoder` (`tabular_autoencoder`): learns to reconstruct normal transactions
  only; its reconstruction error is the anomaly score (calibrated to a probability on
  the validation split).
- `sequence` (`tabular_sequence`): a `RecurrentStack` (GRU, LSTM or simple RNN) over a
  customer's previous transactions, the current one last, to one logit.

Classifier heads output logits, so attributions (integrated gradients) work on the
log-odds that the scorecard turns into points.
"""

from __future__ import annotations

import keras

from domains.finance.config import FinanceConfig
from shared import zoo

# The finance model name (`model.name`) -> the zoo model that builds it.
ZOO_MODELS = {
    "mlp": "tabular_mlp",
    "autoencoder": "tabular_autoencoder",
    "sequence": "tabular_sequence",
}


def build_model(width: int, config: FinanceConfig) -> keras.Model:
    """The configured network for encoded rows of `width` values, built by the zoo."""
    model, seq = config.model, config.model.sequence
    if model.name == "mlp":
        shape, options = (width,), {"hidden": model.hidden, "dropout": model.dropout}
    elif model.name == "autoencoder":
        shape, options = (width,), {"hidden": model.hidden, "latent": model.latent}
    else:
        shape = (seq.history, width)
        options = {
            "cell": seq.cell,
            "units": seq.units,
            "num_layers": seq.num_layers,
            "bidirectional": seq.bidirectional,
            "pooling": seq.pooling,
            # One dense layer between the recurrent state and the logit.
            "hidden": model.hidden[-1:],
            "dropout": model.dropout,
        }
    return zoo.build_model(ZOO_MODELS[model.name], input_shape=shape, l2=model.l2, **options)


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
