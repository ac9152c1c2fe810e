"""Sliding-window inference over 2D or 3D images, blended with a Gaussian importance map.

A segmentation network trained on patches predicts a whole volume patch by patch. As in
nnU-Net and MONAI's `sliding_window_inference`: windows overlap (stride = patch x
(1 - overlap), the last window of each axis flush with the end), and each window's output
is weighted by a Gaussian centred on the patch (sigma = sigma_scale x patch size per axis),
because a network sees least context at the patch border and errs most there. The weighted
outputs are summed and divided by the summed weights, so a prediction that does not depend
on the window (a per-voxel function) comes back unchanged.

numpy only: `predict_fn` is any callable from a numpy batch to a numpy batch (a Keras
model's `predict_on_batch`, or a plain function in tests).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence

import numpy as np

# The importance map's floor, relative to its peak of 1 (MONAI's 1e-3): a Gaussian with
# sigma = patch / 8 falls to ~3e-4 at a face and ~4e-11 at a 3D corner, and a weight that
# small makes a voxel covered only by window corners numerically fragile.
MIN_WEIGHT = 1e-3

PredictFn = Callable[[np.ndarray], np.ndarray]


def gaussian_importance(
    patch_size: Sequence[int], sigma_scale: float | Sequence[float] = 0.125
) -> np.ndarray:
    """A separable Gaussian over the patch, peak 1 at the centre, floored at MIN_WEIGHT.

    sigma = sigma_scale x patch size per axis (nnU-Net's 1/8), centred at (size - 1) / 2.
    """
    patch_size = tuple(int(s) for s in patch_size)
    scales = np.broadcast_to(np.asarray(sigma_scale, dtype=np.float64), (len(patch_size),))
    weights = np.ones((), dtype=np.float64)
    for axis, (size, scale) in enumerate(zip(patch_size, scales, strict=True)):
        if size < 1 or scale <= 0:
            raise ValueError(f"patch size and sigma_scale must be positive; got {size}, {scale}")
        offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
        profile = np.exp(-0.5 * (offsets / (scale * size)) ** 2)
        shape = [1] * len(patch_size)
        shape[axis] = size
        weights = weights * profile.reshape(shape)
    weights = weights / weights.max()
    return np.maximum(weights, MIN_WEIGHT).astype(np.float32)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets along one axis: every stride = max(1, int(patch x (1 - overlap))), plus a
    last window flush with the end; a single window when the axis is no longer than the patch."""
    if size <= patch:
        return [0]
    stride = max(1, int(patch * (1.0 - overlap)))
    starts = list(range(0, size - patch, stride))
    return [*starts, size - patch]


def window_slices(
    spatial_shape: Sequence[int], patch_size: Sequence[int], overlap: float = 0.5
) -> list[tuple[slice, ...]]:
    """Every window, as a tuple of slices, over an image at least `patch_size` on each axis."""
    per_axis = [
        window_starts(int(size), int(patch), overlap)
        for size, patch in zip(spatial_shape, patch_size, strict=True)
    ]
    return [
        tuple(
            slice(start, start + int(patch))
            for start, patch in zip(starts, patch_size, strict=True)
        )
        for starts in itertools.product(*per_axis)
    ]


def _pad_to_patch(
    volume: np.ndarray, patch_size: tuple[int, ...]
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """`volume` zero-padded (evenly on both sides) up to the patch on every short axis,
    and the slices that cut the original region back out."""
    pads, crop = [], []
    for size, patch in zip(volume.shape[:-1], patch_size, strict=True):
        extra = max(0, patch - size)
        before = extra // 2
        pads.append((before, extra - before))
        crop.append(slice(before, before + size))
    if any(p != (0, 0) for p in pads):
        volume = np.pad(volume, [*pads, (0, 0)], mode="constant")
    return volume, tuple(crop)


def sliding_window_inference(
    volume: np.ndarray,
    patch_size: Sequence[int],
    predict_fn: PredictFn,
    overlap: float = 0.5,
    sigma_scale: float | Sequence[float] = 0.125,
    batch_size: int = 4,
    progress: bool = False,
) -> np.ndarray:
    """Predict a whole (spatial..., channels) image with a patch model; (spatial..., K) out.

    `predict_fn` takes a (B, *patch_size, C) float32 batch and returns (B, *patch_size, K)
    class probabilities or logits. An image smaller than the patch along an axis is
    zero-padded there and the result cropped back. Outputs are blended with
    `gaussian_importance` and normalised by the summed weights. `progress` prints the
    number of windows done to stderr.
    """
    volume = np.asarray(volume, dtype=np.float32)
    patch_size = tuple(int(p) for p in patch_size)
    if volume.ndim != len(patch_size) + 1:
        raise ValueError(
            f"volume must be (spatial..., channels) with {len(patch_size)} spatial axes for "
            f"patch_size {patch_size}; got shape {volume.shape}"
        )
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    padded, crop = _pad_to_patch(volume, patch_size)
    spatial = padded.shape[:-1]
    windows = window_slices(spatial, patch_size, overlap)
    importance = gaussian_importance(patch_size, sigma_scale)
    weight_sum = np.zeros(spatial, dtype=np.float32)
    output: np.ndarray | None = None
    for first in range(0, len(windows), batch_size):
        chunk = windows[first : first + batch_size]
        batch = np.stack([padded[(*w, slice(None))] for w in chunk])
        predicted = np.asarray(predict_fn(batch), dtype=np.float32)
        if predicted.ndim != batch.ndim or predicted.shape[:-1] != batch.shape[:-1]:
            raise ValueError(
                f"predict_fn returned shape {predicted.shape} for a batch of shape "
                f"{batch.shape}; expected (B, *patch_size, K)"
            )
        if output is None:
            output = np.zeros((*spatial, predicted.shape[-1]), dtype=np.float32)
        for window, patch in zip(chunk, predicted, strict=True):
            output[(*window, slice(None))] += patch * importance[..., None]
            weight_sum[window] += importance
        if progress:
            done = first + len(chunk)
            print(f"sliding window: {done}/{len(windows)} windows", file=sys.stderr, flush=True)
    assert output is not None  # at least one window always exists
    output /= weight_sum[..., None]
    return output[(*crop, slice(None))]
