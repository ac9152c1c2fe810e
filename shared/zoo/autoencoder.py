"""Autoencoders: dense and convolutional, raw pixels in, reconstructions in [0, 1] out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from shared.zoo.classifier import PREPROCESS, check_input_shape, check_int, check_int_list
from shared.zoo.registry import register_model


@register_model("dense_autoencoder", kind="autoencoder", modality="image", preset_input=(28, 28, 1))
def dense_autoencoder(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (256, 128),
    code_size: int = 32,
) -> keras.Model:
    """Dense autoencoder: flattened pixels / 255 -> `hidden` -> code -> mirrored -> sigmoid
    reconstruction of the input shape (sub-models "encoder" and "decoder")."""
    # === Config ===
    input_shape = check_input_shape(input_shape)
    hidden = check_int_list("hidden", hidden)
    code_size = check_int("code_size", code_size)
    pixels = math.prod(input_shape)

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Flatten(name="flatten")(
        keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    )
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"encode_{i + 1}")(x)
    code = keras.layers.Dense(code_size, name="code")(x)
    encoder = keras.Model(image, code, name="encoder")

    latent = keras.Input(shape=(code_size,), name="code")
    x = latent
    for i, units in enumerate(reversed(hidden)):
        x = keras.layers.Dense(units, activation="relu", name=f"decode_{i + 1}")(x)
    x = keras.layers.Dense(pixels, activation="sigmoid", name="pixels")(x)
    decoder = keras.Model(
        latent, keras.layers.Reshape(input_shape, name="image")(x), name="decoder"
    )
    return keras.Model(image, decoder(encoder(image)), name="dense_autoencoder")


@register_model(
    "conv_autoencoder", kind="autoencoder", modality="image", preset_input=(100, 100, 3)
)
def conv_autoencoder(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    filters: Sequence[int] = (32, 64, 128),
    code_size: int = 64,
) -> keras.Model:
    """Convolutional autoencoder: stride-2 conv stages (`filters`) to a Dense `code_size` code,
    transposed-conv stages back, cropped to the input size (100x100x3 -> 64-d at the preset)."""
    # === Config ===
    input_shape = check_input_shape(input_shape)
    filters = check_int_list("filters", filters)
    code_size = check_int("code_size", code_size)
    height, width, channels = input_shape
    sizes = [(height, width)]
    for _ in filters:
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
    low_h, low_w = sizes[-1]
    up_h, up_w = low_h * 2 ** len(filters), low_w * 2 ** len(filters)

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(
            f, 3, strides=2, padding="same", activation="relu", name=f"encode_{i + 1}"
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    code = keras.layers.Dense(code_size, name="code")(x)
    encoder = keras.Model(image, code, name="encoder")

    latent = keras.Input(shape=(code_size,), name="code")
    x = keras.layers.Dense(low_h * low_w * filters[-1], activation="relu", name="expand")(latent)
    x = keras.layers.Reshape((low_h, low_w, filters[-1]), name="unflatten")(x)
    for i, f in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation="relu", name=f"decode_{i + 1}"
        )(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="pixels")(x)
    if (up_h, up_w) != (height, width):
        x = keras.layers.Cropping2D(((0, up_h - height), (0, up_w - width)), name="crop")(x)
    decoder = keras.Model(latent, x, name="decoder")
    return keras.Model(image, decoder(encoder(image)), name="conv_autoencoder")
