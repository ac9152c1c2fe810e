"""DCGAN (Radford, Metz & Chintala, 2016)."""

from __future__ import annotations

import keras

from shared.zoo.classifier import check_input_shape, check_int
from shared.zoo.gan import GAN, dcgan_discriminator, upsampling_plan
from shared.zoo.registry import register_model


@register_model("dcgan", kind="generative", preset_input=(64, 64, 3), modality="image")
def dcgan(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    latent_dim: int = 100,
    width: int = 64,
) -> keras.Model:
    """DCGAN: a generator z -> Dense -> reshape -> stride-2 transposed convs (BN, ReLU; tanh
    out) and a discriminator of stride-2 convs (LeakyReLU), in a `GAN` training model.

    At the 64x64x3 preset the generator goes 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 ->
    64x64x3, as in the paper; other sizes start from the side halved while even and >= 8
    (28x28 digits: 7x7).
    """
    # === Config ===
    input_shape = check_input_shape(input_shape)
    latent_dim = check_int("latent_dim", latent_dim)
    width = check_int("width", width)
    start_h, start_w, doublings = upsampling_plan("dcgan", input_shape)
    channels = input_shape[-1]
    top = width * 2 ** max(0, doublings - 1)

    # === Generator ===
    z = keras.Input(shape=(latent_dim,), name="z")
    x = keras.layers.Dense(start_h * start_w * top, use_bias=False, name="project")(z)
    x = keras.layers.BatchNormalization(name="project_norm")(x)
    x = keras.layers.ReLU(name="project_act")(x)
    x = keras.layers.Reshape((start_h, start_w, top), name="unflatten")(x)
    for i in range(doublings - 1):
        x = keras.layers.Conv2DTranspose(
            top // 2 ** (i + 1), 4, strides=2, padding="same", use_bias=False, name=f"up_{i + 1}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"up_{i + 1}_norm")(x)
        x = keras.layers.ReLU(name=f"up_{i + 1}_act")(x)
    final = (
        keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="to_image")
        if doublings
        else keras.layers.Conv2D(channels, 3, padding="same", name="to_image")
    )
    image = keras.layers.Activation("tanh", dtype="float32", name="tanh")(final(x))
    generator = keras.Model(z, image, name="generator")

    discriminator = dcgan_discriminator(input_shape, width, doublings)
    return GAN(generator, discriminator, latent_dim, name="dcgan")
