"""LeNet-5 (LeCun et al., 1998, "Gradient-based learning applied to document recognition")."""

from __future__ import annotations

import keras

from shared.zoo.classifier import (
    BACKBONE,
    assemble_classifier,
    check_choice,
    check_image_classifier,
    check_min_side,
    check_rate,
)
from shared.zoo.registry import register_model

# C1 (5x5 valid) -> S2 (/2) -> C3 (5x5 valid) -> S4 (/2) -> C5 (5x5 valid): 32 -> 1.
MIN_SIDE = 32


@register_model(
    "lenet5", kind="image_classifier", preset_input=(32, 32, 1), preset_classes=10, modality="image"
)
def lenet5(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    activation: str = "tanh",
    pooling: str = "average",
    dropout: float = 0.0,
) -> keras.Model:
    """LeNet-5: C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84, output; 61,706 parameters at
    32x32x1 with 10 classes (the paper's count with a full C3 table and a Dense output).

    Two deviations from 1998, both standard: C3 connects every S2 map (the paper's
    sparse table has 1,516 weights, the full one 2,416 - the 61,706 figure assumes the
    full one) and the output is a softmax Dense instead of RBF units. F6 is a 1x1 conv
    on C5's 1x1 map (the same weights as a Dense), so the backbone still ends on a
    feature map. Needs 32x32 inputs or larger (digits: data.image_size=[32, 32]).
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    check_min_side("lenet5", input_shape, MIN_SIDE, "three 5x5 valid convolutions and two pools")
    pooling = check_choice("pooling", pooling, ("average", "max"))
    activation = check_choice("activation", activation, ("tanh", "relu", "sigmoid"))
    dropout = check_rate("dropout", dropout)
    pool_layer = (
        keras.layers.AveragePooling2D if pooling == "average" else keras.layers.MaxPooling2D
    )

    # === Layers ===
    layers = [
        keras.layers.Conv2D(6, 5, activation=activation, name="c1"),
        pool_layer(2, name="s2"),
        keras.layers.Conv2D(16, 5, activation=activation, name="c3"),
        pool_layer(2, name="s4"),
        keras.layers.Conv2D(120, 5, activation=activation, name="c5"),
        keras.layers.Conv2D(84, 1, activation=activation, name="f6"),
    ]

    # === Functional Model ===
    image = keras.Input(shape=input_shape, name="normalized_image")
    x = image
    for layer in layers:
        x = layer(x)
    backbone = keras.Model(image, x, name=BACKBONE)
    return assemble_classifier(backbone, input_shape, num_classes, dropout, name="lenet5")
