"""A compact StyleGAN-style generator (Karras et al., 2019; 2020) in a `GAN` training model."""

from __future__ import annotations

import keras
from keras import ops

from shared.blocks import LearnedConstant, ModulatedConv2D, NoiseInjection
from shared.zoo.classifier import check_input_shape, check_int
from shared.zoo.gan import GAN, dcgan_discriminator, upsampling_plan
from shared.zoo.registry import register_model


@register_model("stylegan", kind="generative", preset_input=(64, 64, 3), modality="image")
def stylegan(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    latent_dim: int = 128,
    mapping_layers: int = 4,
    width: int = 64,
) -> keras.Model:
    """StyleGAN-style generator: a mapping MLP z -> w (pixel-normalised z, `mapping_layers`
    LeakyReLU layers), a learned constant, per resolution two modulated 3x3 convolutions
    (weight demodulation) with noise inputs and LeakyReLU, bilinear 2x upsampling between,
    and a modulated 1x1 to-RGB with tanh; DCGAN's discriminator.

    Compact: no progressive growing, skip/residual to-RGB paths, style mixing, path-length
    or R1 regularisation, or equalised learning rate.
    """
    # === Config ===
    input_shape = check_input_shape(input_shape)
    latent_dim = check_int("latent_dim", latent_dim)
    mapping_layers = check_int("mapping_layers", mapping_layers)
    width = check_int("width", width)
    start_h, start_w, doublings = upsampling_plan("stylegan", input_shape)
    channels = input_shape[-1]

    def filters(level: int) -> int:
        return width * 2 ** max(0, doublings - level - 1)

    # === Mapping network ===
    z = keras.Input(shape=(latent_dim,), name="z")
    w = z * ops.rsqrt(ops.mean(ops.square(z), axis=-1, keepdims=True) + 1e-8)
    for i in range(mapping_layers):
        w = keras.layers.Dense(latent_dim, name=f"mapping_{i + 1}")(w)
        w = keras.layers.LeakyReLU(0.2, name=f"mapping_{i + 1}_act")(w)

    # === Synthesis network ===
    x = LearnedConstant((start_h, start_w, filters(0)), name="constant")(w)
    for level in range(doublings + 1):
        if level:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up_{level}")(x)
        for conv in (1, 2):
            name = f"level{level}_conv{conv}"
            x = ModulatedConv2D(filters(level), 3, name=name)(x, w)
            x = NoiseInjection(name=f"{name}_noise")(x)
            x = keras.layers.LeakyReLU(0.2, name=f"{name}_act")(x)
    x = ModulatedConv2D(channels, 1, demodulate=False, name="to_rgb")(x, w)
    image = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    generator = keras.Model(z, image, name="generator")

    discriminator = dcgan_discriminator(input_shape, width, doublings)
    return GAN(generator, discriminator, latent_dim, name="stylegan")
