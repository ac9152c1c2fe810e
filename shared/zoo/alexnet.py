"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), single-tower."""

from __future__ import annotations

import keras

from shared.zoo.classifier import (
    BACKBONE,
    POOL,
    assemble_classifier,
    check_image_classifier,
    check_int,
    check_min_side,
    check_positive,
    check_rate,
)
from shared.zoo.registry import register_model

# 11x11/4 valid conv and three 3x3/2 pools: 67 is the smallest side left with a 1x1 map.
MIN_SIDE = 67


@register_model(
    "alexnet",
    kind="image_classifier",
    preset_input=(227, 227, 3),
    preset_classes=1000,
    modality="image",
)
def alexnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: float = 1.0,
    fc_units: int = 4096,
    dropout: float = 0.5,
) -> keras.Model:
    """AlexNet, single-tower: conv 96@11x11/4, pool, 256@5x5, pool, 384, 384, 256@3x3, pool,
    fc 4096, 4096; 62,378,344 parameters at 227x227x3 with 1000 classes.

    The two-GPU split of the paper (grouped conv2/4/5) and local response normalisation
    (no weights) are left out, as in most references; `width` scales the conv filters
    and `fc_units` the fully connected layers. Inputs of at least 67x67.
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    check_min_side("alexnet", input_shape, MIN_SIDE, "an 11x11/4 conv and three 3x3/2 pools")
    width = check_positive("width", width)
    fc_units = check_int("fc_units", fc_units)
    dropout = check_rate("dropout", dropout)

    def filters(n: int) -> int:
        return max(1, round(n * width))

    # === Layers ===
    features = [
        keras.layers.Conv2D(filters(96), 11, strides=4, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(3, strides=2, name="pool1"),
        keras.layers.Conv2D(filters(256), 5, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(3, strides=2, name="pool2"),
        keras.layers.Conv2D(filters(384), 3, padding="same", activation="relu", name="conv3"),
        keras.layers.Conv2D(filters(384), 3, padding="same", activation="relu", name="conv4"),
        keras.layers.Conv2D(filters(256), 3, padding="same", activation="relu", name="conv5"),
    ]
    # pool5 opens the head so the backbone ends on conv5, the map Grad-CAM wants.
    head = keras.Sequential(
        [
            keras.layers.MaxPooling2D(3, strides=2, name="pool5"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(fc_units, activation="relu", name="fc6"),
            keras.layers.Dropout(dropout, name="fc6_dropout"),
            keras.layers.Dense(fc_units, activation="relu", name="fc7"),
        ],
        name=POOL,
    )

    # === Functional Model ===
    image = keras.Input(shape=input_shape, name="normalized_image")
    x = image
    for layer in features:
        x = layer(x)
    backbone = keras.Model(image, x, name=BACKBONE)
    return assemble_classifier(backbone, input_shape, num_classes, dropout, "alexnet", pool=head)
