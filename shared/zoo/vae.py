"""The variational autoencoder (Kingma & Welling, 2014)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from shared.blocks import VAESampling
from shared.zoo.classifier import (
    PREPROCESS,
    check_input_shape,
    check_int,
    check_int_list,
    check_positive,
)
from shared.zoo.registry import register_model


@register_model("vae", kind="generative", preset_input=(28, 28, 1), modality="image")
def vae(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (512, 256),
    latent_dim: int = 16,
    beta: float = 1.0,
) -> keras.Model:
    """VAE: encoder (pixels / 255 -> `hidden` -> z_mean, z_log_var), reparameterised sample
    with its KL term added as a loss, and a decoder back to Bernoulli pixel means (sigmoid).

    The 28x28 preset has a 16-d latent. Train with a per-pixel binary cross-entropy
    summed over pixels against the image / 255; sample with
    `model.get_layer("decoder")(z)`, z ~ N(0, I).
    """
    # === Config ===
    input_shape = check_input_shape(input_shape)
    hidden = check_int_list("hidden", hidden)
    latent_dim = check_int("latent_dim", latent_dim)
    beta = check_positive("beta", beta)
    pixels = math.prod(input_shape)

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Flatten(name="flatten")(
        keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    )
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"encode_{i + 1}")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    encoder = keras.Model(image, [z_mean, z_log_var], name="encoder")

    latent = keras.Input(shape=(latent_dim,), name="z")
    x = latent
    for i, units in enumerate(reversed(hidden)):
        x = keras.layers.Dense(units, activation="relu", name=f"decode_{i + 1}")(x)
    x = keras.layers.Dense(pixels, activation="sigmoid", dtype="float32", name="pixels")(x)
    decoder = keras.Model(
        latent, keras.layers.Reshape(input_shape, name="image")(x), name="decoder"
    )

    mean, log_var = encoder(image)
    z = VAESampling(beta, name="sampling")([mean, log_var])
    return keras.Model(image, decoder(z), name="vae")
