"""The driving domain's perception model: the zoo's `fcos` network (shared.zoo.fcos)
compiled with its multi-task losses and their weights.

The network, its decoding (`detector`) and `PerceptionConfig` are the zoo's; they are
re-exported here so the domain's modules import their model from one place.
"""

from __future__ import annotations

import keras

from shared.zoo.detection_losses import (
    CenternessLoss,
    CIoUBoxLoss,
    FocalClassLoss,
    SegmentationLoss,
)
from shared.zoo.fcos import (
    DETECTION_OUTPUTS,
    MASK_OUTPUT,
    FCOSDecode,
    Levels,
    PerceptionConfig,
    detector,
    perception_model,
)

__all__ = [
    "DETECTION_OUTPUTS",
    "MASK_OUTPUT",
    "FCOSDecode",
    "Levels",
    "PerceptionConfig",
    "compile_perception",
    "detector",
    "perception_losses",
    "perception_model",
]


def perception_losses(config: PerceptionConfig) -> tuple[dict, dict]:
    """Losses and loss weights per output, for `model.compile`."""
    losses: dict[str, keras.losses.Loss] = {}
    weights: dict[str, float] = {}
    if config.detection:
        losses.update(
            class_logits=FocalClassLoss(),
            box_ltrb=CIoUBoxLoss(),
            centerness_logits=CenternessLoss(),
        )
        weights.update(dict.fromkeys(DETECTION_OUTPUTS, config.detection_weight))
    if config.segmentation:
        losses[MASK_OUTPUT] = SegmentationLoss(dice_weight=config.dice_weight)
        weights[MASK_OUTPUT] = config.segmentation_weight
    return losses, weights


def compile_perception(
    model: keras.Model, config: PerceptionConfig, optimizer: keras.optimizers.Optimizer
) -> keras.Model:
    losses, weights = perception_losses(config)
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)
    return model
