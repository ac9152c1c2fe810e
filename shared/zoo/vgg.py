"""VGG (Simonyan & Zisserman, 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"): `vgg` is the configurable family, `vgg16` the paper's configuration D."""

from __future__ import annotations

import keras

from shared.blocks import VGGBlock
from shared.zoo.classifier import (
    BACKBONE,
    POOL,
    assemble_classifier,
    check_bool,
    check_image_classifier,
    check_int,
    check_min_side,
    check_positive,
    check_rate,
)
from shared.zoo.registry import register_model

# Convs per stage for configurations A (11), B (13), D (16) and E (19).
STAGE_CONVS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
STAGE_FILTERS = (64, 128, 256, 512, 512)
MIN_SIDE = 32  # five 2x2 pools


@register_model(
    "vgg", kind="image_classifier", preset_input=(32, 32, 3), preset_classes=10, modality="image"
)
def vgg(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 16,
    width: float = 1.0,
    fc_units: int = 4096,
    batch_norm: bool = False,
    dropout: float = 0.5,
) -> keras.Model:
    """VGG-11/13/16/19: five stages of 3x3 convs with 2x2 max pooling, then fc, fc, output.

    `width` scales every stage's filters (64..512 at 1.0), `fc_units` the two hidden
    fully connected layers, `batch_norm` gives VGG-BN. Inputs of at least 32x32.
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    depth = check_int("depth", depth, choices=tuple(STAGE_CONVS))
    width = check_positive("width", width)
    fc_units = check_int("fc_units", fc_units)
    batch_norm = check_bool("batch_norm", batch_norm)
    dropout = check_rate("dropout", dropout)
    check_min_side(f"vgg{depth}", input_shape, MIN_SIDE, "five 2x2 max pools")

    # === Layers ===
    stages = [
        # The last stage's pool opens the head, so the backbone ends on a conv map.
        VGGBlock(
            max(1, round(filters * width)),
            convs,
            pool=index < len(STAGE_FILTERS) - 1,
            batch_norm=batch_norm,
            name=f"block{index + 1}",
        )
        for index, (filters, convs) in enumerate(
            zip(STAGE_FILTERS, STAGE_CONVS[depth], strict=True)
        )
    ]
    head = keras.Sequential(
        [
            keras.layers.MaxPooling2D(2, name="block5_pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(fc_units, activation="relu", name="fc1"),
            keras.layers.Dropout(dropout, name="fc1_dropout"),
            keras.layers.Dense(fc_units, activation="relu", name="fc2"),
        ],
        name=POOL,
    )

    # === Functional Model ===
    image = keras.Input(shape=input_shape, name="normalized_image")
    x = image
    for stage in stages:
        x = stage(x)
    backbone = keras.Model(image, x, name=BACKBONE)
    return assemble_classifier(
        backbone, input_shape, num_classes, dropout, f"vgg{depth}", pool=head
    )


@register_model(
    "vgg16",
    kind="image_classifier",
    preset_input=(224, 224, 3),
    preset_classes=1000,
    modality="image",
)
def vgg16(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    dropout: float = 0.5,
) -> keras.Model:
    """VGG-16 (configuration D): 138,357,544 parameters at 224x224x3 with 1000 classes, the
    same as keras.applications.VGG16(weights=None)."""
    return vgg(input_shape, num_classes, depth=16, dropout=dropout)
