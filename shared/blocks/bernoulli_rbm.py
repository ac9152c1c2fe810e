"""A restricted Boltzmann machine layer, trained by contrastive divergence (Hinton, 2002)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

HIDDEN_UNITS = ("sigmoid", "relu")


@keras.saving.register_keras_serializable(package="deepfield")
class BernoulliRBM(keras.layers.Layer):
    """Visible units in [0, 1], hidden units binary ("sigmoid") or noisy rectified
    ("relu", Nair & Hinton, 2010); called, it returns the hidden activations
    p(h | v), so a stack of these is a deep belief network's feed-forward pass.

    `contrastive_divergence(v)` runs CD-k (k = `cd_k` Gibbs steps from the data) and
    returns the *negated* CD estimates of the log-likelihood gradient for kernel,
    hidden bias and visible bias, so a Keras optimizer can apply them as a loss
    gradient. The visible bias is used only by the generative direction
    (reconstruction), so it is a non-trainable weight that supervised fine-tuning
    leaves alone.

    Args:
        units: Hidden units.
        hidden: "sigmoid" or "relu".
        cd_k: Gibbs steps of contrastive divergence.
        pretrain_epochs: Epochs of greedy CD pretraining a pipeline should run on
            this layer (kept in the config so a saved model records how it was made).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        units: int,
        hidden: str = "sigmoid",
        cd_k: int = 1,
        pretrain_epochs: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if hidden not in HIDDEN_UNITS:
            raise ValueError(f"hidden must be one of {HIDDEN_UNITS}, got {hidden!r}")
        self.units = int(units)
        self.hidden = hidden
        self.cd_k = int(cd_k)
        self.pretrain_epochs = int(pretrain_epochs)
        self.seed = keras.random.SeedGenerator(0)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        visible = int(input_shape[-1])
        self.kernel = self.add_weight(
            shape=(visible, self.units),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="kernel",
        )
        self.hidden_bias = self.add_weight(
            shape=(self.units,), initializer="zeros", name="hidden_bias"
        )
        # Used only by the generative direction (CD), so supervised training leaves it
        # alone: not trainable, updated by `contrastive_divergence`'s caller directly.
        self.visible_bias = self.add_weight(
            shape=(visible,), initializer="zeros", trainable=False, name="visible_bias"
        )
        self.built = True

    def hidden_preactivation(self, visible: Any) -> Any:
        return ops.matmul(visible, self.kernel) + self.hidden_bias

    def hidden_mean(self, visible: Any) -> Any:
        x = self.hidden_preactivation(visible)
        return ops.sigmoid(x) if self.hidden == "sigmoid" else ops.relu(x)

    def sample_hidden(self, visible: Any) -> Any:
        x = self.hidden_preactivation(visible)
        if self.hidden == "sigmoid":
            return ops.cast(
                keras.random.uniform(ops.shape(x), seed=self.seed) < ops.sigmoid(x), x.dtype
            )
        noise = keras.random.normal(ops.shape(x), seed=self.seed) * ops.sqrt(ops.sigmoid(x))
        return ops.relu(x + noise)

    def visible_mean(self, hidden: Any) -> Any:
        return ops.sigmoid(ops.matmul(hidden, ops.transpose(self.kernel)) + self.visible_bias)

    def call(self, inputs: Any) -> Any:
        return self.hidden_mean(inputs)

    def contrastive_divergence(self, visible: Any) -> tuple[list[Any], Any]:
        """(gradients for [kernel, hidden_bias, visible_bias], reconstruction error)."""
        positive_hidden = self.hidden_mean(visible)
        chain_visible = visible
        hidden_sample = self.sample_hidden(visible)
        for _ in range(self.cd_k):
            # Mean-field visibles (not samples) cut the estimate's variance.
            chain_visible = self.visible_mean(hidden_sample)
            hidden_sample = self.sample_hidden(chain_visible)
        negative_hidden = self.hidden_mean(chain_visible)
        batch = ops.cast(ops.shape(visible)[0], visible.dtype)
        kernel_grad = (
            ops.matmul(ops.transpose(visible), positive_hidden)
            - ops.matmul(ops.transpose(chain_visible), negative_hidden)
        ) / batch
        hidden_grad = ops.mean(positive_hidden - negative_hidden, axis=0)
        visible_grad = ops.mean(visible - chain_visible, axis=0)
        error = ops.mean(ops.square(visible - self.visible_mean(positive_hidden)))
        # Ascent on the likelihood = descent on the negated estimate.
        return [-kernel_grad, -hidden_grad, -visible_grad], error

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "hidden": self.hidden,
                "cd_k": self.cd_k,
                "pretrain_epochs": self.pretrain_epochs,
            }
        )
        return config
