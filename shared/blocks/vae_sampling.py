"""The VAE's reparameterised sample z = mean + sigma * eps, adding its KL term as a loss."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepfield")
class VAESampling(keras.layers.Layer):
    """[z_mean, z_log_var] -> z ~ N(mean, exp(log_var)) (Kingma & Welling, 2014).

    The KL divergence to N(0, I), summed over latent dimensions and averaged over the
    batch, times `beta`, is added with `add_loss`, so `fit` minimises the ELBO with
    only a reconstruction loss in `compile`. In inference (`training=False`) the layer
    returns the mean, which makes encodings deterministic.

    Args:
        beta: Weight of the KL term (1 is the VAE; > 1 a beta-VAE).
        **kwargs: Base `keras.layers.Layer` arguments.
    """

    def __init__(self, beta: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.seed = keras.random.SeedGenerator(1337)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(self.beta * ops.mean(kl))
        if not training:
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed, dtype=z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta": self.beta})
        return config
