"""3D ResNets for volumes (Hara, Kataoka & Satoh, 2018, "Can Spatiotemporal 3D CNNs Retrace
the History of 2D CNNs and ImageNet?"), the backbone MedMNIST v2 reports on its 3D sets.

The 2D ResNet's basic blocks with 3x3x3 convolutions (`ResidualBasicBlock(rank=3)`), four
stages doubling the width and halving every side, global average pooling over the volume,
and the zoo's classifier head, so the layout other code reads by name (`preprocess`,
`backbone`, `pool`, `dropout`, `predictions`) is the 2D classifiers'. Input: raw voxels
on 0..255, (D, H, W, C).
"""

from __future__ import annotations

import keras

from shared.blocks import ConvNormAct, ResidualBasicBlock
from shared.zoo.classifier import (
    BACKBONE,
    assemble_classifier,
    check_choice,
    check_int,
    check_num_classes,
    check_rank,
    check_rate,
)
from shared.zoo.registry import register_model

# Basic blocks per stage (Hara et al.'s ResNet-10/18/34).
STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
}
STEMS = ("auto", "imagenet", "small")
# As in 2D: below this side the 7^3/2 conv + 3^3/2 pool stem throws away too much.
SMALL_STEM_BELOW = 64


@register_model(
    "resnet3d",
    kind="image_classifier",
    modality="volume",
    preset_input=(28, 28, 28, 1),
    preset_classes=11,
)
def resnet3d(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    depth: int = 18,
    width: int = 32,
    stem: str = "auto",
    dropout: float = 0.0,
) -> keras.Model:
    """3D ResNet of depth 10/18/34 (basic blocks, 3x3x3 convs) for volumes (D, H, W, C);
    stem "small" (3x3x3/1 conv, no pool) suits MedMNIST's 28^3 and anything under 64 voxels
    a side, "auto" picks it there, "imagenet" is the 7x7x7/2 conv and 3x3x3/2 max pool.

    `width` is the first stage's filter count, doubled at each of the four stages. The
    preset is OrganMNIST3D's input (28^3, one channel) and its 11 classes.
    """
    # === Config ===
    check_rank("resnet3d", input_shape, (4,), "(D, H, W, C)")
    num_classes = check_num_classes(num_classes)
    depth = check_int("depth", depth, choices=tuple(STAGE_BLOCKS))
    width = check_int("width", width)
    stem = check_choice("stem", stem, STEMS)
    dropout = check_rate("dropout", dropout)
    backbone = resnet3d_backbone(tuple(input_shape), depth=depth, width=width, stem=stem)
    return assemble_classifier(
        backbone, input_shape, num_classes, dropout, name=f"resnet3d_{depth}"
    )


def resnet3d_backbone(
    input_shape: tuple[int, int, int, int], *, depth: int, width: int = 32, stem: str = "auto"
) -> keras.Model:
    """The 3D ResNet feature extractor: normalised volume -> last stage's 5-D feature map."""
    # === Config ===
    sides = list(input_shape[:3])
    if stem == "auto":
        stem = "small" if min(sides) < SMALL_STEM_BELOW else "imagenet"

    # === Layers ===
    if stem == "imagenet":
        stem_layers: list[keras.Layer] = [
            ConvNormAct(width, 7, strides=2, rank=3, name="stem_conv"),
            keras.layers.MaxPooling3D(3, strides=2, padding="same", name="stem_pool"),
        ]
        sides = [-(-side // 4) for side in sides]
    else:
        stem_layers = [ConvNormAct(width, 3, rank=3, name="stem_conv")]

    blocks: list[keras.Layer] = []
    in_channels = width
    for stage, num_blocks in enumerate(STAGE_BLOCKS[depth]):
        filters = width * 2**stage
        for index in range(num_blocks):
            # Stages 2-4 open by halving every side, unless the map is already 1 voxel.
            strides = 2 if stage > 0 and index == 0 and max(sides) > 1 else 1
            projection = strides != 1 or in_channels != filters
            blocks.append(
                ResidualBasicBlock(
                    filters, strides, projection, rank=3, name=f"stage{stage + 1}_block{index + 1}"
                )
            )
            sides = [-(-side // strides) for side in sides]
            in_channels = filters

    # === Functional Model ===
    volume = keras.Input(shape=tuple(input_shape), name="normalized_volume")
    x = volume
    for layer in stem_layers + blocks:
        x = layer(x)
    return keras.Model(volume, x, name=BACKBONE)
