"""A compact VGG-style CNN for small images (8x8 digits up to about 64x64)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from shared.blocks import ConvNormAct
from shared.errors import UserError
from shared.zoo.classifier import (
    BACKBONE,
    assemble_classifier,
    check_image_classifier,
    check_int,
    check_rate,
)
from shared.zoo.registry import register_model


@register_model(
    "small_cnn",
    kind="image_classifier",
    preset_input=(8, 8, 1),
    preset_classes=10,
    modality="image",
)
def small_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    filters: Sequence[int] = (32, 64),
    dropout: float = 0.25,
    kernel_size: int = 3,
) -> keras.Model:
    """Small VGG-style CNN: per entry of `filters`, two conv-BN-ReLU layers, with 2x2 max
    pooling between stages while the map is at least 2x2.

    There is no pooling after the last stage: the backbone ends on its last conv
    feature map, at the highest resolution the net has there, which is what Grad-CAM
    wants, and the head's global average pool follows directly.
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    if isinstance(filters, int | str) or not isinstance(filters, Sequence) or not filters:
        raise UserError(f"option 'filters' must be a non-empty list of integers, got {filters!r}")
    filters = [check_int("filters", f) for f in filters]
    dropout = check_rate("dropout", dropout)
    kernel_size = check_int("kernel_size", kernel_size)
    height, width, _ = input_shape

    # === Layers ===
    stages: list[list[keras.Layer]] = []
    for i, stage_filters in enumerate(filters):
        stage: list[keras.Layer] = []
        # Halve the map before every stage but the first, unless it is already 1 wide.
        if i > 0 and min(height, width) >= 2:
            stage.append(keras.layers.MaxPooling2D(2, padding="same", name=f"stage{i}_pool"))
            height, width = -(-height // 2), -(-width // 2)
        stage += [ConvNormAct(stage_filters, kernel_size, name=f"stage{i}_conv{j}") for j in (1, 2)]
        stages.append(stage)

    # === Functional Model ===
    image = keras.Input(shape=input_shape, name="normalized_image")
    x = image
    for stage in stages:
        for layer in stage:
            x = layer(x)
    backbone = keras.Model(image, x, name=BACKBONE)
    return assemble_classifier(backbone, input_shape, num_classes, dropout, name="small_cnn")
