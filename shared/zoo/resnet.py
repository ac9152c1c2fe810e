"""ResNets (He et al., 2016, "Deep Residual Learning for Image Recognition").

`resnet` is the configurable family; `resnet18`, `resnet34` and `resnet50` are the
paper's configurations, laid out so that their parameter counts equal well-known
references: resnet18/34 have torchvision's trainable counts (no conv biases), and
resnet50 is keras.applications.ResNet50's layout (conv biases, stride on the first
1x1 of a bottleneck), 25,636,712 parameters at 224x224x3 with 1000 classes.
"""

from __future__ import annotations

import keras

from shared.blocks import ConvNormAct, ResidualBasicBlock, ResidualBottleneckBlock
from shared.blocks.residual_bottleneck_block import STRIDE_POSITIONS
from shared.zoo.classifier import (
    BACKBONE,
    assemble_classifier,
    check_bool,
    check_choice,
    check_image_classifier,
    check_int,
    check_rate,
)
from shared.zoo.registry import register_model

# Residual blocks per stage for each depth (Table 1 of the paper).
STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
STEMS = ("auto", "imagenet", "small")
# Below this input side the ImageNet stem's 4x downsampling throws away too much.
SMALL_STEM_BELOW = 64


@register_model(
    "resnet", kind="image_classifier", preset_input=(32, 32, 3), preset_classes=10, modality="image"
)
def resnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 18,
    width: int = 64,
    stem: str = "auto",
    dropout: float = 0.0,
    use_bias: bool = False,
    stride_on: str = "3x3",
    zero_init_residual: bool = False,
) -> keras.Model:
    """ResNet of depth 18/34 (basic blocks) or 50/101/152 (bottleneck blocks), v1.5 layout by
    default; stem "small" (3x3/1 conv, no pool) suits inputs under 64 pixels, "auto" picks it there.

    `width` is the first stage's filter count, doubled at each of the four stages.
    `use_bias` adds conv biases (redundant under BatchNorm, kept to match references),
    `stride_on` is "3x3" (v1.5) or "1x1" (v1) for bottleneck blocks, and
    `zero_init_residual` starts every block as the identity.
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    depth = check_int("depth", depth, choices=tuple(STAGE_BLOCKS))
    width = check_int("width", width)
    stem = check_choice("stem", stem, STEMS)
    dropout = check_rate("dropout", dropout)
    use_bias = check_bool("use_bias", use_bias)
    stride_on = check_choice("stride_on", stride_on, STRIDE_POSITIONS)
    zero_init_residual = check_bool("zero_init_residual", zero_init_residual)
    backbone = resnet_backbone(
        input_shape,
        depth=depth,
        width=width,
        stem=stem,
        use_bias=use_bias,
        stride_on=stride_on,
        zero_init_residual=zero_init_residual,
    )
    return assemble_classifier(backbone, input_shape, num_classes, dropout, name=f"resnet{depth}")


def resnet_backbone(
    input_shape: tuple[int, int, int],
    *,
    depth: int,
    width: int = 64,
    stem: str = "auto",
    use_bias: bool = False,
    stride_on: str = "3x3",
    zero_init_residual: bool = False,
) -> keras.Model:
    """The ResNet feature extractor: normalised image -> last stage's feature map."""
    # === Config ===
    height, width_px, channels = input_shape
    if stem == "auto":
        stem = "small" if min(height, width_px) < SMALL_STEM_BELOW else "imagenet"
    bottleneck = depth >= 50
    common = {"use_bias": use_bias, "zero_init_residual": zero_init_residual}

    # === Layers ===
    if stem == "imagenet":
        stem_layers: list[keras.Layer] = [
            ConvNormAct(width, 7, strides=2, use_bias=use_bias, name="stem_conv"),
            keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool"),
        ]
        # Each halves the map; "same" padding rounds up, so a side never drops below 1.
        height, width_px = -(-height // 4), -(-width_px // 4)
    else:
        stem_layers = [ConvNormAct(width, 3, use_bias=use_bias, name="stem_conv")]

    blocks: list[keras.Layer] = []
    in_channels = width
    for stage, num_blocks in enumerate(STAGE_BLOCKS[depth]):
        filters = width * 2**stage
        out_channels = filters * 4 if bottleneck else filters
        for index in range(num_blocks):
            # The first block of stages 2-4 halves the map, unless it is already 1x1:
            # striding would change nothing there but still cost a projection.
            strides = 2 if stage > 0 and index == 0 and max(height, width_px) > 1 else 1
            projection = strides != 1 or in_channels != out_channels
            name = f"stage{stage + 1}_block{index + 1}"
            if bottleneck:
                block = ResidualBottleneckBlock(
                    filters, strides, projection, stride_on=stride_on, name=name, **common
                )
            else:
                block = ResidualBasicBlock(filters, strides, projection, name=name, **common)
            blocks.append(block)
            height, width_px = -(-height // strides), -(-width_px // strides)
            in_channels = out_channels

    # === Functional Model ===
    image = keras.Input(shape=(input_shape[0], input_shape[1], channels), name="normalized_image")
    x = image
    for layer in stem_layers + blocks:
        x = layer(x)
    return keras.Model(image, x, name=BACKBONE)


# === Presets ===
# Presets fix the paper's architecture; only the input-size and head options remain.


@register_model(
    "resnet18",
    kind="image_classifier",
    preset_input=(224, 224, 3),
    preset_classes=1000,
    modality="image",
)
def resnet18(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    stem: str = "auto",
    dropout: float = 0.0,
) -> keras.Model:
    """ResNet-18 as in the paper: 11,689,512 trainable parameters at 224x224x3 with 1000
    classes, torchvision's count."""
    return resnet(input_shape, num_classes, depth=18, stem=stem, dropout=dropout)


@register_model(
    "resnet34",
    kind="image_classifier",
    preset_input=(224, 224, 3),
    preset_classes=1000,
    modality="image",
)
def resnet34(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    stem: str = "auto",
    dropout: float = 0.0,
) -> keras.Model:
    """ResNet-34 as in the paper: 21,797,672 trainable parameters at 224x224x3 with 1000
    classes, torchvision's count."""
    return resnet(input_shape, num_classes, depth=34, stem=stem, dropout=dropout)


@register_model(
    "resnet50",
    kind="image_classifier",
    preset_input=(224, 224, 3),
    preset_classes=1000,
    modality="image",
)
def resnet50(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    stem: str = "auto",
    dropout: float = 0.0,
) -> keras.Model:
    """ResNet-50 (v1) in keras.applications.ResNet50's layout: 25,636,712 parameters at
    224x224x3 with 1000 classes."""
    return resnet(
        input_shape,
        num_classes,
        depth=50,
        stem=stem,
        dropout=dropout,
        use_bias=True,
        stride_on="1x1",
    )
