"""Sliding-window inference: exact for per-voxel predictors, full coverage, Gaussian blending."""

from __future__ import annotations

import numpy as np
import pytest

from domains.healthcare.sliding_window import (
    MIN_WEIGHT,
    gaussian_importance,
    sliding_window_inference,
    window_slices,
    window_starts,
)


def per_voxel(batch: np.ndarray) -> np.ndarray:
    """A predictor that depends on each voxel alone: the stitched result must equal it."""
    first = batch[..., :1]
    return np.concatenate([batch, 2.0 * first, np.tanh(first) ** 2], axis=-1)


def one_hot_threshold(batch: np.ndarray) -> np.ndarray:
    return np.eye(2, dtype=np.float32)[(batch[..., 0] > 0.5).astype(int)]


CASES = [
    ((37, 53, 2), (16, 16)),  # 2D, non-divisible
    ((20, 23, 17, 1), (8, 8, 8)),  # 3D, non-divisible
    ((5, 7, 1), (8, 8)),  # smaller than the patch on every axis
    ((30, 5, 3), (8, 8)),  # smaller on one axis only
    ((6, 19, 9, 2), (8, 8, 4)),  # 3D, mixed
]


@pytest.mark.parametrize(("shape", "patch"), CASES)
def test_per_voxel_predictor_is_reproduced_exactly(shape, patch) -> None:
    volume = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    for fn in (per_voxel, one_hot_threshold):
        out = sliding_window_inference(volume, patch, fn, overlap=0.5, batch_size=3)
        expected = fn(volume[None])[0]
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize(("shape", "patch"), CASES)
def test_windows_cover_every_voxel(shape, patch) -> None:
    spatial = tuple(max(s, p) for s, p in zip(shape[:-1], patch, strict=True))  # after padding
    covered = np.zeros(spatial, int)
    windows = window_slices(spatial, patch, overlap=0.5)
    for window in windows:
        covered[window] += 1
        assert all(w.stop - w.start == p for w, p in zip(window, patch, strict=True))
        assert all(w.stop <= s for w, s in zip(window, spatial, strict=True))
    assert covered.min() >= 1
    # A constant predictor comes back as exactly that constant: no voxel lacks weight.
    ones = sliding_window_inference(
        np.zeros(shape, np.float32), patch, lambda b: np.ones((*b.shape[:-1], 1), np.float32)
    )
    np.testing.assert_allclose(ones, 1.0, atol=1e-6)


def test_window_starts_stride_and_flush_end() -> None:
    assert window_starts(37, 16, 0.5) == [0, 8, 16, 21]  # stride 8, last flush with the end
    assert window_starts(32, 16, 0.5) == [0, 8, 16]
    assert window_starts(16, 16, 0.5) == [0]
    assert window_starts(5, 16, 0.5) == [0]
    assert window_starts(40, 16, 0.0) == [0, 16, 24]
    assert window_starts(20, 4, 0.9) == list(range(17))  # stride never below 1


def test_gaussian_importance_peaks_at_the_centre() -> None:
    odd = gaussian_importance((9, 15, 7))
    assert odd.shape == (9, 15, 7) and odd.dtype == np.float32
    assert np.unravel_index(odd.argmax(), odd.shape) == (4, 7, 3)
    assert odd.max() == pytest.approx(1.0)
    assert odd.min() >= MIN_WEIGHT  # floored: edges never get zero weight
    even = gaussian_importance((8, 8))
    assert np.allclose(even, even[::-1, ::-1])  # symmetric
    assert np.allclose(even[3:5, 3:5], even.max())  # the four central voxels share the peak
    assert even[0, 0] < even[0, 3] < even[3, 3]
    # sigma = sigma_scale x size: one step from the centre of a 1D 33-voxel patch.
    line = gaussian_importance((33,), sigma_scale=0.25)
    assert line[17] == pytest.approx(np.exp(-0.5 * (1 / (0.25 * 33)) ** 2), rel=1e-6)


def test_overlaps_are_blended_by_the_gaussian_weights() -> None:
    # Two windows along the columns, 0-15 and 8-23; each predicts its own index everywhere.
    def window_index(batch: np.ndarray) -> np.ndarray:
        index = np.arange(len(batch), dtype=np.float32).reshape(-1, 1, 1, 1)
        return np.broadcast_to(index, (*batch.shape[:-1], 1)).copy()

    out = sliding_window_inference(np.zeros((8, 24, 1), np.float32), (8, 16), window_index)[..., 0]
    assert np.all(out[:, :8] == 0.0) and np.all(out[:, 16:] == 1.0)  # one window only
    weights = gaussian_importance((8, 16))[4]
    for col in range(8, 16):  # covered by both: weight of the second / total
        first, second = weights[col], weights[col - 8]
        assert out[4, col] == pytest.approx(second / (first + second), rel=1e-5)
    assert out[4, 11] < 0.5 < out[4, 12]  # the nearer window's centre dominates


def test_batches_respect_batch_size_and_do_not_change_the_result() -> None:
    volume = np.random.default_rng(1).normal(size=(40, 40, 1)).astype(np.float32)
    sizes: list[int] = []

    def counting(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        # Depends on the whole window (its mean), so the blending matters.
        return np.sin(batch) * (1 + batch.mean(axis=(1, 2, 3), keepdims=True))

    single = sliding_window_inference(volume, (16, 16), counting, batch_size=1)
    assert sizes == [1] * 16  # windows at 0, 8, 16, 24 on both axes
    sizes.clear()
    batched = sliding_window_inference(volume, (16, 16), counting, batch_size=5)
    assert sizes == [5, 5, 5, 1]
    np.testing.assert_allclose(single, batched, atol=1e-6)


def test_bad_inputs_are_refused() -> None:
    volume = np.zeros((16, 16, 1), np.float32)
    with pytest.raises(ValueError, match="spatial axes"):
        sliding_window_inference(volume[..., 0], (8, 8), per_voxel)
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_inference(volume, (8, 8), per_voxel, overlap=1.0)
    with pytest.raises(ValueError, match="predict_fn returned"):
        sliding_window_inference(volume, (8, 8), lambda b: b[:, :4])
