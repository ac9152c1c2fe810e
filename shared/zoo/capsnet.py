"""CapsNet (Sabour, Frosst & Hinton, 2017, "Dynamic Routing Between Capsules")."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.blocks import AuxiliaryLoss, CapsuleRouting, PrimaryCapsules
from shared.errors import UserError
from shared.zoo.classifier import (
    PREDICTIONS,
    PREPROCESS,
    check_image_classifier,
    check_int,
    check_min_side,
)
from shared.zoo.registry import LOSSES, register_model

# The paper's reconstruction loss weight: sum of squared errors x 0.0005.
RECONSTRUCTION_WEIGHT = 0.0005


@keras.saving.register_keras_serializable(package="deepfield")
class CapsuleMarginLoss(keras.losses.Loss):
    """The margin loss of the paper on capsule lengths, for integer labels:
    T_k max(0, m+ - |v_k|)^2 + lambda (1 - T_k) max(0, |v_k| - m-)^2, summed over k."""

    def __init__(
        self,
        upper: float = 0.9,
        lower: float = 0.1,
        down_weight: float = 0.5,
        name: str = "capsule_margin",
        **kwargs: Any,
    ):
        super().__init__(name=name, **kwargs)
        self.upper, self.lower, self.down_weight = float(upper), float(lower), float(down_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), ops.shape(y_pred)[-1])
        present = labels * ops.square(ops.relu(self.upper - y_pred))
        absent = (1.0 - labels) * ops.square(ops.relu(y_pred - self.lower))
        return ops.sum(present + self.down_weight * absent, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"upper": self.upper, "lower": self.lower, "down_weight": self.down_weight})
        return config


LOSSES.register("capsule_margin", CapsuleMarginLoss)


@register_model(
    "capsnet",
    kind="image_classifier",
    preset_input=(28, 28, 1),
    preset_classes=10,
    modality="image",
    loss="capsule_margin",
)
def capsnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    conv_filters: int = 256,
    primary_capsules: int = 32,
    primary_dim: int = 8,
    capsule_layers: int = 1,
    hidden_capsules: int = 32,
    capsule_dim: int = 16,
    routings: int = 3,
    decoder_units: tuple[int, int] = (512, 1024),
) -> keras.Model:
    """CapsNet: conv 256@9x9, PrimaryCaps 32x8D, DigitCaps (one 16-D capsule per class,
    3 routings) and a 512-1024 reconstruction decoder; 8,215,568 parameters at 28x28x1 with
    10 classes, the paper's count.

    The output "predictions" is each class capsule's length (train with the margin loss,
    `capsule_margin`). The decoder reconstructs from the capsule of the *predicted*
    class, its loss (0.0005 x squared error) added to the model; the paper masks with
    the true label in training, which would need the label as a second input.
    `capsule_layers` > 1 inserts routed layers of `hidden_capsules` capsules.
    """
    # === Config ===
    input_shape, num_classes = check_image_classifier(input_shape, num_classes)
    conv_filters = check_int("conv_filters", conv_filters)
    primary_capsules = check_int("primary_capsules", primary_capsules)
    primary_dim = check_int("primary_dim", primary_dim)
    capsule_layers = check_int("capsule_layers", capsule_layers)
    hidden_capsules = check_int("hidden_capsules", hidden_capsules)
    capsule_dim = check_int("capsule_dim", capsule_dim)
    routings = check_int("routings", routings)
    if isinstance(decoder_units, int | str) or len(decoder_units) != 2:
        raise UserError(f"option 'decoder_units' must be two integers, got {decoder_units!r}")
    decoder_units = tuple(check_int("decoder_units", u) for u in decoder_units)
    check_min_side("capsnet", input_shape, 17, "a 9x9 conv and a 9x9/2 primary-capsule conv")
    pixels = input_shape[0] * input_shape[1] * input_shape[2]

    # === Layers ===
    conv = keras.layers.Conv2D(conv_filters, 9, activation="relu", name="conv1")
    primary = PrimaryCapsules(primary_capsules, primary_dim, name="primary_capsules")
    routed = [
        CapsuleRouting(hidden_capsules, capsule_dim, routings, name=f"capsules_{i + 1}")
        for i in range(capsule_layers - 1)
    ]
    class_capsules = CapsuleRouting(num_classes, capsule_dim, routings, name="class_capsules")
    decoder = [
        keras.layers.Dense(decoder_units[0], activation="relu", name="decoder_1"),
        keras.layers.Dense(decoder_units[1], activation="relu", name="decoder_2"),
        keras.layers.Dense(pixels, activation="sigmoid", name="reconstruction"),
    ]

    # === Functional Model ===
    image = keras.Input(shape=input_shape, dtype="float32", name="image")
    scaled = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)(image)
    capsules = primary(conv(scaled))
    for layer in routed:
        capsules = layer(capsules)
    capsules = class_capsules(capsules)
    lengths = ops.sqrt(ops.sum(ops.square(capsules), axis=-1) + 1e-7)
    chosen = ops.one_hot(ops.argmax(lengths, axis=-1), num_classes)
    x = ops.reshape(capsules * chosen[..., None], (-1, num_classes * capsule_dim))
    for layer in decoder:
        x = layer(x)
    error = ops.sum(ops.square(x - ops.reshape(scaled, (-1, pixels))), axis=-1)
    outputs = AuxiliaryLoss(RECONSTRUCTION_WEIGHT, dtype="float32", name=PREDICTIONS)(
        [lengths, error]
    )
    return keras.Model(image, outputs, name="capsnet")
