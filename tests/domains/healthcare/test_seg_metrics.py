"""Segmentation metrics: hand-computed Dice and HD95, and the rules for empty masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from domains.healthcare.seg_metrics import (
    dice,
    hd95,
    lesion_detection,
    segmentation_metrics,
    surface,
    volumes_ml,
    worst_case_distance,
)


def box(shape: tuple[int, ...], start: tuple[int, ...], size: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def disk(shape: tuple[int, int], center: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


# --------------------------------------------------------------------------- dice


def test_dice_of_two_overlapping_squares() -> None:
    # 4x4 squares overlapping in a 2x2 corner: 2 * 4 / (16 + 16).
    a, b = box((10, 10), (0, 0), 4), box((10, 10), (2, 2), 4)
    assert dice(a, b) == pytest.approx(0.25)
    assert dice(a, a) == 1.0


def test_dice_empty_rules() -> None:
    empty, full = np.zeros((6, 6, 6), bool), box((6, 6, 6), (1, 1, 1), 3)
    assert dice(empty, empty) == 1.0  # nothing to find, nothing found
    assert dice(empty, full) == 0.0  # missed
    assert dice(full, empty) == 0.0  # spurious


# --------------------------------------------------------------------------- surface and HD95


def test_surface_is_the_face_connected_erosion_residue() -> None:
    # A 5x5 square without its corners: face-connected erosion keeps (1, 1), a
    # full-connectivity erosion would not; so (1, 1) is interior here, as in MONAI.
    mask = np.ones((5, 5), bool)
    mask[0, 0] = mask[0, 4] = mask[4, 0] = mask[4, 4] = False
    expected = mask.copy()
    expected[1:4, 1:4] = False
    assert np.array_equal(surface(mask), expected)


def test_surface_counts_the_array_border() -> None:
    # A mask filling the array has a surface along the border (outside is background).
    assert surface(np.ones((4, 4, 4), bool)).sum() == 64 - 8


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_hd95_of_shifted_cubes_is_the_shift_in_mm(axis: int) -> None:
    spacing = (0.5, 0.7, 2.0)
    true = box((20, 20, 20), (5, 5, 5), 6)
    pred = np.roll(true, 2, axis=axis)
    # The shifted cube's far face (36 of 152 surface voxels) is exactly 2 voxels away.
    assert hd95(pred, true, spacing) == pytest.approx(2 * spacing[axis])
    assert hd95(true, pred, spacing) == pytest.approx(2 * spacing[axis])


def test_hd95_of_shifted_squares_2d() -> None:
    spacing = (0.8, 1.5)
    true = box((24, 24), (5, 5), 8)
    pred = np.roll(true, 3, axis=1)
    assert hd95(pred, true, spacing) == pytest.approx(3 * 1.5)
    assert hd95(true, true, spacing) == 0.0


def test_hd95_matches_brute_force_on_random_shapes() -> None:
    """max of the two directed 95th percentiles, surfaces compared point to point."""
    rng = np.random.default_rng(0)
    spacing = np.array([0.9, 1.3, 2.5])
    for _ in range(5):
        noise = ndimage.gaussian_filter(rng.normal(size=(18, 20, 12)), 2.0)
        true = noise > 0.05
        pred = ndimage.shift(noise, (1, -2, 1), order=0) > 0.0
        true_pts = np.argwhere(surface(true)) * spacing
        pred_pts = np.argwhere(surface(pred)) * spacing
        d = cdist(pred_pts, true_pts)
        expected = max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))
        assert hd95(pred, true, spacing) == pytest.approx(expected, rel=1e-9)


def test_hd95_empty_rules_and_worst_case() -> None:
    shape, spacing = (10, 20, 30), (1.0, 2.0, 0.5)
    empty, full = np.zeros(shape, bool), box(shape, (2, 2, 2), 4)
    diagonal = math.sqrt(10**2 + 40**2 + 15**2)
    assert worst_case_distance(shape, spacing) == pytest.approx(diagonal)
    assert hd95(empty, empty, spacing) == 0.0
    assert hd95(empty, full, spacing) == pytest.approx(diagonal)  # missed
    assert hd95(full, empty, spacing) == pytest.approx(diagonal)  # spurious
    # The worst case really is worse than the worst real prediction: opposite corners.
    corners = np.zeros(shape, bool), np.zeros(shape, bool)
    corners[0][0, 0, 0] = corners[1][-1, -1, -1] = True
    assert hd95(*corners, spacing) < diagonal


def test_hd95_rejects_mismatched_spacing() -> None:
    with pytest.raises(ValueError, match="spacing"):
        hd95(box((8, 8), (1, 1), 3), box((8, 8), (2, 2), 3), spacing=(1.0, 1.0, 1.0))


# --------------------------------------------------------------------------- aggregation


def test_segmentation_metrics_keys_and_hand_values() -> None:
    names = ["background", "Anterior", "Posterior hippocampus"]
    true = np.zeros((12, 12), np.uint8)
    true[0:4, 0:4] = 1
    true[6:10, 6:10] = 2
    pred = np.zeros_like(true)
    pred[2:6, 2:6] = 1  # dice 0.25
    pred[6:10, 6:10] = 2  # perfect
    out = segmentation_metrics([pred], [true], (1.0, 1.0), names)
    assert set(out) == {
        "dice_anterior",
        "hd95_anterior",
        "dice_posterior_hippocampus",
        "hd95_posterior_hippocampus",
        "dice",
        "hd95",
        "hd95_worst_case_count",
        "num_cases",
    }
    assert out["dice_anterior"] == pytest.approx(0.25)
    assert out["dice_posterior_hippocampus"] == 1.0
    assert out["dice"] == pytest.approx(0.625)
    assert out["hd95_posterior_hippocampus"] == 0.0
    assert out["hd95"] == pytest.approx(out["hd95_anterior"] / 2)
    assert out["hd95_worst_case_count"] == 0
    assert out["num_cases"] == 1


def test_a_missed_structure_scores_worse_than_a_poor_detection() -> None:
    """The MONAI#9095 trap: dropping a missed structure's NaN would make missing it *better*."""
    names = ["background", "organ", "lesion"]
    shape, spacing = (20, 20, 20), (1.0, 1.0, 2.0)
    true = np.zeros(shape, np.uint8)
    true[2:10, 2:10, 2:10] = 1
    true[14:17, 14:17, 14:17] = 2
    good_organ = true == 1
    missed = np.where(good_organ, 1, 0).astype(np.uint8)
    poor = missed.copy()
    poor[12:14, 2:4, 15:17] = 2  # a wrong, far-away lesion: poor, but a detection
    out_missed = segmentation_metrics([missed], [true], spacing, names)
    out_poor = segmentation_metrics([poor], [true], spacing, names)
    worst = worst_case_distance(shape, spacing)
    assert out_missed["hd95_lesion"] == pytest.approx(worst)
    assert out_missed["hd95_worst_case_count"] == 1
    assert out_poor["hd95_worst_case_count"] == 0
    assert 0 < out_poor["hd95_lesion"] < worst
    assert out_missed["hd95"] > out_poor["hd95"]
    assert out_missed["dice_lesion"] == 0.0


def test_no_nan_with_empty_classes_and_per_case_spacings() -> None:
    names = ["background", "a", "b"]
    empty = np.zeros((8, 8, 8), np.uint8)
    some = empty.copy()
    some[2:5, 2:5, 2:5] = 1
    # case 1: class a found, class b absent in both; case 2: a missed, b spurious.
    spurious = empty.copy()
    spurious[0:2, 0:2, 0:2] = 2
    preds, trues = [some, spurious], [some, some]
    per_case = segmentation_metrics(preds, trues, [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0)], names)
    shared = segmentation_metrics(preds, trues, (1.0, 1.0, 1.0), names)
    assert per_case == shared
    assert all(math.isfinite(v) for v in shared.values())
    assert shared["dice_a"] == pytest.approx(0.5)  # 1.0 then 0.0 (missed)
    assert shared["dice_b"] == pytest.approx(0.5)  # 1.0 (both empty) then 0.0 (spurious)
    assert shared["hd95_worst_case_count"] == 2
    assert shared["num_cases"] == 2


def test_segmentation_metrics_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        segmentation_metrics([np.zeros((4, 4))], [], None, ["background", "a"])
    with pytest.raises(ValueError):
        segmentation_metrics([], [], None, ["background", "a"])


# --------------------------------------------------------------------------- lesions, volumes


def test_lesion_detection_counts() -> None:
    shape = (64, 64)
    true = disk(shape, (10, 10), 4) | disk(shape, (10, 40), 4) | disk(shape, (45, 20), 5)
    pred = disk(shape, (11, 11), 4) | disk(shape, (10, 41), 3) | disk(shape, (50, 55), 3)
    out = lesion_detection(pred, true)
    assert out["true_lesions"] == 3
    assert out["predicted_lesions"] == 3
    assert out["detected"] == 2
    assert out["false_positive_components"] == 1
    assert out["sensitivity"] == pytest.approx(2 / 3)


def test_lesion_detection_needs_iou_not_just_touching() -> None:
    true = disk((64, 64), (30, 30), 3)
    blob = np.ones((64, 64), bool)  # everything "positive": IoU ~ 0.007
    assert lesion_detection(blob, true)["detected"] == 0
    assert lesion_detection(blob, true, min_overlap=0.0)["detected"] == 1
    nothing = lesion_detection(np.zeros((8, 8), bool), np.zeros((8, 8), bool))
    assert nothing["sensitivity"] == 1.0 and nothing["false_positive_components"] == 0


def test_lesion_components_use_full_connectivity() -> None:
    true = np.zeros((6, 6, 6), bool)
    true[1, 1, 1] = true[2, 2, 2] = True  # touching at a corner only: one lesion
    assert lesion_detection(true, true)["true_lesions"] == 1


def test_volumes_ml() -> None:
    mask = np.zeros((10, 10, 20), np.uint8)
    mask[:, :, :10] = 1  # 1000 voxels of 1 x 1 x 2 mm = 2 ml
    mask[0, 0, 10:15] = 2  # 5 voxels = 0.01 ml
    out = volumes_ml(mask, (1.0, 1.0, 2.0), ["background", "liver", "Kidney L", "spleen"])
    assert out == pytest.approx(
        {"volume_ml_liver": 2.0, "volume_ml_kidney_l": 0.01, "volume_ml_spleen": 0.0}
    )
