"""What segmentation training feeds on: the Dice + cross-entropy loss and the
foreground-Dice metric (registered, so a saved model reloads), and the training patches:
each case normalised once, patches drawn with nnU-Net's class-balanced oversampling,
fixed validation patches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from domains.healthcare import seg_data
from domains.healthcare.config import HealthcareConfig
from domains.healthcare.seg_data import INPUT_SCALE, SegCase

MAX_CLASS_VOXELS = 4096  # foreground voxels kept per class and case for patch centres
ROTATE_SHARE = 0.2  # nnU-Net rotates a fifth of its training patches


# === Loss and metric ===
@keras.saving.register_keras_serializable(package="deepfield_healthcare")
class DiceCrossEntropy(keras.losses.Loss):
    """Cross-entropy per voxel plus (1 - soft Dice) over the foreground classes.

    The Dice term sums over the batch and the voxels ("batch Dice", as nnU-Net), so a
    class absent from one patch does not make that patch's Dice 0/0; cross-entropy keeps
    gradients useful while Dice is still flat. `y_true` holds integer labels (B, ...),
    `y_pred` softmax probabilities (B, ..., K).
    """

    def __init__(
        self,
        num_classes: int,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 1e-5,
        name: str = "dice_ce",
        **kwargs: Any,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.dice_weight, self.ce_weight, self.smooth = dice_weight, ce_weight, smooth

    def call(self, y_true, y_pred):
        ops = keras.ops
        onehot = ops.one_hot(ops.cast(y_true, "int32"), self.num_classes, dtype=y_pred.dtype)
        spatial = tuple(range(1, len(y_pred.shape) - 1))
        probs = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        ce = -ops.mean(ops.sum(onehot * ops.log(probs), axis=-1), axis=spatial)
        axes = (0, *spatial)
        inter = ops.sum(onehot * y_pred, axis=axes)[1:]
        denom = ops.sum(onehot, axis=axes)[1:] + ops.sum(y_pred, axis=axes)[1:]
        dice = (2.0 * inter + self.smooth) / (denom + self.smooth)
        return self.ce_weight * ce + self.dice_weight * (1.0 - ops.mean(dice))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dice_weight": self.dice_weight,
            "ce_weight": self.ce_weight,
            "smooth": self.smooth,
        }


@keras.saving.register_keras_serializable(package="deepfield_healthcare")
class ForegroundDice(keras.metrics.Metric):
    """Hard (arg-max) Dice over the epoch, averaged over the foreground classes present."""

    def __init__(self, num_classes: int, name: str = "dice", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        size = (self.num_classes - 1,)
        self.inter = self.add_variable(shape=size, initializer="zeros", name="intersection")
        self.total = self.add_variable(shape=size, initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        k = self.num_classes
        true = ops.one_hot(ops.cast(y_true, "int32"), k, dtype="float32")[..., 1:]
        pred = ops.one_hot(ops.argmax(y_pred, axis=-1), k, dtype="float32")[..., 1:]
        axes = tuple(range(len(true.shape) - 1))
        self.inter.assign_add(ops.sum(true * pred, axis=axes))
        self.total.assign_add(ops.sum(true, axis=axes) + ops.sum(pred, axis=axes))

    def result(self):
        ops = keras.ops
        present = ops.cast(self.total > 0, "float32")
        dice = 2.0 * self.inter / ops.maximum(self.total, 1.0)
        return ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.inter.assign(keras.ops.zeros_like(self.inter))
        self.total.assign(keras.ops.zeros_like(self.total))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


# === Preprocessing ===
class Prepared:
    """A case normalised to the model's input scale and padded to at least the patch."""

    def __init__(self, case: SegCase, patch: tuple[int, ...], mode: str, window, rng):
        image = seg_data.normalize(case.image, mode, window)
        pads = [(0, max(0, p - s)) for s, p in zip(image.shape, patch, strict=True)]
        self.image = np.pad(image, pads)[..., None]
        self.mask = np.pad(case.mask, pads) if case.mask is not None else None
        self.centres: dict[int, np.ndarray] = {}
        if self.mask is not None:
            for label in np.unique(self.mask):
                if label == 0:
                    continue
                flat = np.flatnonzero(self.mask == label)
                if len(flat) > MAX_CLASS_VOXELS:
                    flat = rng.choice(flat, MAX_CLASS_VOXELS, replace=False)
                self.centres[int(label)] = flat

    def crop(self, patch: tuple[int, ...], start: tuple[int, ...]):
        box = tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))
        return self.image[box], self.mask[box]

    def start_around(self, index: int, patch: tuple[int, ...]) -> tuple[int, ...]:
        """The patch start that centres flat voxel `index`, kept inside the image."""
        centre = np.unravel_index(index, self.mask.shape)
        return tuple(
            int(np.clip(c - p // 2, 0, s - p))
            for c, p, s in zip(centre, patch, self.mask.shape, strict=True)
        )


def prepare(
    cases: list[SegCase], patch: tuple[int, ...], mode: str, window, seed: int
) -> list[Prepared]:
    rng = np.random.default_rng(seed)
    return [Prepared(case, patch, mode, window, rng) for case in cases]


def patch_sampler(
    cases: list[Prepared], patch: tuple[int, ...], config: HealthcareConfig, seed: int
) -> tuple[Callable[[], Iterator], int]:
    """A generator of one epoch's (patch, labels) and its length.

    A share `segment.foreground_fraction` of patches is centred on a voxel of a
    foreground class drawn uniformly among those the case holds (class-balanced: a small
    structure is seen as often as a large one); the rest start anywhere. Flips and an
    intensity scale/shift and in-plane rotations (`segment.rotate`) are applied when
    configured.
    """
    seg = config.segment
    whole = all(c.image.shape[:-1] == patch for c in cases)
    per_case = 1 if whole else seg.patches_per_case
    count = len(cases) * per_case
    calls = itertools.count()
    jitter = seg.intensity_jitter

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([seed, next(calls)])
        for i in rng.permutation(count) % len(cases):
            case = cases[i]
            shape = case.mask.shape
            if case.centres and rng.random() < seg.foreground_fraction:
                label = rng.choice(sorted(case.centres))
                start = case.start_around(int(rng.choice(case.centres[label])), patch)
            else:
                start = tuple(
                    int(rng.integers(0, s - p + 1)) for s, p in zip(shape, patch, strict=True)
                )
            image, mask = case.crop(patch, start)
            if seg.flip:
                for axis in range(len(patch)):
                    if rng.random() < 0.5:
                        image, mask = np.flip(image, axis), np.flip(mask, axis)
            if seg.rotate and rng.random() < ROTATE_SHARE:
                image, mask = rotate_patch(image, mask, rng.uniform(-seg.rotate, seg.rotate))
            if jitter:
                scale = 1.0 + rng.uniform(-jitter, jitter)
                shift = rng.uniform(-jitter, jitter) * INPUT_SCALE
                image = image * scale + shift
            yield np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask, np.uint8)

    return generate, count


def rotate_patch(image: np.ndarray, mask: np.ndarray, degrees: float):
    """`image` (spatial..., 1) and `mask` (spatial...) rotated together in the plane of
    their first two axes: the image with linear interpolation, the labels with nearest
    (so no label is invented between two others); edges repeat the nearest voxel."""
    from scipy import ndimage

    turned = ndimage.rotate(image, degrees, axes=(0, 1), reshape=False, order=1, mode="nearest")
    labels = ndimage.rotate(mask, degrees, axes=(0, 1), reshape=False, order=0, mode="nearest")
    return turned, labels


def validation_patches(
    cases: list[Prepared], patch: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """One fixed patch per validation case, centred on its foreground (or its middle)."""
    images, masks = [], []
    for case in cases:
        shape = case.mask.shape
        fg = np.argwhere(case.mask > 0)
        centre = fg.mean(axis=0).astype(int) if len(fg) else np.array(shape) // 2
        start = tuple(
            int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(centre, patch, shape, strict=True)
        )
        image, mask = case.crop(patch, start)
        images.append(image)
        masks.append(mask)
    return np.stack(images).astype(np.float32), np.stack(masks).astype(np.uint8)
