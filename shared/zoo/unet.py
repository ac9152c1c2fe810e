"""U-Net (Ronneberger, Fischer & Brox, 2015) and 3D U-Net (Cicek et al., 2016)."""

from __future__ import annotations

import keras

from shared.blocks import UNetDecoderBlock, UNetEncoderBlock
from shared.errors import UserError
from shared.zoo.classifier import PREPROCESS, check_bool, check_int, check_rank
from shared.zoo.registry import register_model

CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}


def _unet(
    name: str,
    rank: int,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    depth: int,
    width: int,
    batch_norm: bool,
) -> keras.Model:
    # === Config ===
    check_rank(name, input_shape, (rank + 1,), "(H, W, C)" if rank == 2 else "(D, H, W, C)")
    depth = check_int("depth", depth)
    width = check_int("width", width)
    batch_norm = check_bool("batch_norm", batch_norm)
    classes = 2 if num_classes is None else num_classes
    factor = 2**depth
    if any(side % factor for side in input_shape[:-1]):
        raise UserError(
            f"{name} with depth={depth} halves the input {depth} times: every side of "
            f"{'x'.join(map(str, input_shape))} must be a multiple of {factor}"
        )

    # === Layers ===
    encoders = [
        UNetEncoderBlock(width * 2**i, rank, batch_norm, name=f"encoder_{i + 1}")
        for i in range(depth)
    ]
    bottom = UNetEncoderBlock(width * 2**depth, rank, batch_norm, pool=False, name="bottom")
    decoders = [
        UNetDecoderBlock(width * 2**i, rank, batch_norm, name=f"decoder_{i + 1}")
        for i in reversed(range(depth))
    ]
    head = CONV[rank](classes, 1, activation="softmax", dtype="float32", name="segmentation")

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    skips = []
    for encoder in encoders:
        skip, x = encoder(x)
        skips.append(skip)
    x = bottom(x)
    for decoder, skip in zip(decoders, reversed(skips), strict=True):
        x = decoder(x, skip)
    return keras.Model(image, head(x), name=name)


@register_model(
    "unet", kind="segmentation", modality="image", preset_input=(256, 256, 1), preset_classes=2
)
def unet(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    depth: int = 4,
    width: int = 64,
    batch_norm: bool = True,
) -> keras.Model:
    """2-D U-Net: `depth` encoder steps (width 64, doubling) to a bottom at 1024 channels,
    mirrored decoder steps with skip connections, per-pixel softmax over `num_classes`.

    "Same" convolutions (output = input size); sides must be multiples of 2^depth.
    """
    return _unet("unet", 2, input_shape, num_classes, depth, width, batch_norm)


@register_model(
    "unet3d", kind="segmentation", modality="volume", preset_input=(64, 64, 64, 1), preset_classes=3
)
def unet3d(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    depth: int = 3,
    width: int = 32,
    batch_norm: bool = True,
) -> keras.Model:
    """3-D U-Net for volumes (D, H, W, C): as `unet` with 3x3x3 convs, Cicek et al.'s
    depth 3 and width 32."""
    return _unet("unet3d", 3, input_shape, num_classes, depth, width, batch_norm)
