"""The multi-task losses: FCOS detection (focal, CIoU, centerness) and segmentation.

Each detection loss is normalised over the whole batch, as FCOS does (by the number of
positive locations, or the sum of their centerness targets for boxes), so it returns
one scalar: Keras passes a scalar through its reduction unchanged. Targets are the
arrays `targets.FCOSAssigner` makes. Every loss is 0 for a perfect prediction, so a
logged value reads as distance from the optimum.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _positives(count):
    return ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package="deepfield")
class FocalClassLoss(keras.losses.Loss):
    """Sigmoid focal loss (Lin et al., 2017; alpha 0.25, gamma 2) summed over locations
    and classes, over the number of positive locations; rows of -1 (ignore regions)
    count nothing. Uses Keras's own `binary_focal_crossentropy` (which averages over
    classes: multiplied back)."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, name="focal_class", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        counted = ops.cast(y_true[..., 0] >= 0, y_pred.dtype)
        y_true = ops.maximum(y_true, 0.0)
        per_location = keras.losses.binary_focal_crossentropy(
            y_true,
            y_pred,
            apply_class_balancing=True,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=True,
        )
        classes = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
        return ops.sum(per_location * counted) * classes / _positives(ops.sum(y_true))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


def ltrb_to_xyxy(ltrb):
    """Distances (..., 4) from a location as a box around that location at the origin
    (IoU-family losses are translation invariant, so the location itself is not needed)."""
    left, top, right, bottom = ops.split(ltrb, 4, axis=-1)
    return ops.concatenate([-left, -top, right, bottom], axis=-1)


@keras.saving.register_keras_serializable(package="deepfield")
class CIoUBoxLoss(keras.losses.Loss):
    """1 - CIoU (Zheng et al., 2020) of predicted and target distances at positive
    locations, weighted by the centerness target and normalised by its sum (FCOS's
    weighting). CIoU is Keras's `keras.utils.bounding_boxes.compute_ciou`; Keras has
    no CIoU loss class. y_true is (..., 5): l, t, r, b, centerness (0 = background)."""

    def __init__(self, name="ciou_box", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        weight = y_true[..., 4]
        positive = ops.expand_dims(weight > 0, -1)
        # Background rows get a harmless unit box on both sides: their weight is 0, but a
        # degenerate box there would still put NaN into the gradient through `where`.
        target = ops.where(positive, y_true[..., :4], 1.0)
        pred = ops.where(positive, y_pred, 1.0)
        ciou = keras.utils.bounding_boxes.compute_ciou(
            ltrb_to_xyxy(pred), ltrb_to_xyxy(target), bounding_box_format="xyxy"
        )
        return ops.sum((1.0 - ciou) * weight) / ops.maximum(ops.sum(weight), 1e-6)


@keras.saving.register_keras_serializable(package="deepfield")
class CenternessLoss(keras.losses.Loss):
    """Binary cross-entropy of the centerness logit at positive locations (target -1
    elsewhere), minus the target's own entropy (the same gradient, and 0 at the optimum),
    over the number of positives."""

    def __init__(self, name="centerness", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        positive = ops.cast(y_true >= 0, y_pred.dtype)
        target = ops.clip(y_true, 0.0, 1.0)
        bce = ops.binary_crossentropy(target, y_pred, from_logits=True)
        eps = 1e-7
        entropy = -(
            target * ops.log(ops.maximum(target, eps))
            + (1 - target) * ops.log(ops.maximum(1 - target, eps))
        )
        return ops.sum((bce - entropy) * positive) / _positives(ops.sum(positive))


@keras.saving.register_keras_serializable(package="deepfield")
class SegmentationLoss(keras.losses.Loss):
    """Softmax cross-entropy over pixels plus `dice_weight` times (1 - soft Dice), the
    Dice averaged over the foreground classes (road, lane marking) over the batch; thin
    lane markings are a few percent of the pixels, which plain CE underweights."""

    def __init__(self, dice_weight: float = 1.0, name="segmentation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.squeeze(y_true, -1) if len(y_true.shape) == 4 else y_true, "int32")
        ce = ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
        )
        if not self.dice_weight:
            return ce
        num_classes = ops.shape(y_pred)[-1]
        probs = ops.softmax(ops.cast(y_pred, "float32"), axis=-1)[..., 1:]
        onehot = ops.one_hot(labels, num_classes, dtype="float32")[..., 1:]
        axes = (0, 1, 2)
        inter = ops.sum(probs * onehot, axis=axes)
        total = ops.sum(probs, axis=axes) + ops.sum(onehot, axis=axes)
        dice = (2.0 * inter + 1.0) / (total + 1.0)
        return ce + self.dice_weight * (1.0 - ops.mean(dice))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dice_weight": self.dice_weight}
