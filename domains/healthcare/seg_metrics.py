"""Segmentation metrics with explicit rules for the cases where the usual formulas break.

Two pitfalls of the field are ruled out here (numpy/scipy only, no framework):

* Dice of an empty mask is 0/0. MONAI returns NaN (or 1, depending on `ignore_empty`) and
  averages then silently skip it (MONAI issues #4160, #7504). Here: both empty -> 1.0,
  exactly one empty -> 0.0. Never NaN.
* HD95 of a missed (or spurious) structure is undefined. MONAI returns inf/NaN and its mean
  reduction drops NaN, so missing a structure entirely *improves* the mean HD95
  (MONAI#9095). Here a missed or spurious structure scores a stated worst case, the diagonal
  of the volume in mm, and `segmentation_metrics` counts how often that happened
  (`hd95_worst_case_count`), so the number is never hidden.

Surface distances follow MONAI's defaults (`compute_hausdorff_distance` with
`percentile=95, directed=False`, `get_mask_edges`, `get_surface_distance`):

* surface voxels = the mask minus its binary erosion with scipy's default structuring
  element, i.e. face connectivity (6-neighbourhood in 3D, 4 in 2D), with everything outside
  the array counted as background (a mask touching the border has a surface there);
* the distance from every surface voxel of one mask to the nearest surface voxel of the other,
  exact Euclidean in mm (`distance_transform_edt(sampling=spacing)`);
* HD95 = the larger of the two directed 95th percentiles (numpy's linear interpolation, as
  `torch.quantile`), not the percentile of the pooled distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from shared.metrics import slug

Spacing = float | Sequence[float] | np.ndarray | None


def _spacing(spacing: Spacing, ndim: int) -> tuple[float, ...]:
    """Per-axis spacing in mm: None -> 1 mm, a scalar -> isotropic, else one value per axis."""
    if spacing is None:
        return (1.0,) * ndim
    values = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.shape != (ndim,) or not np.all(values > 0):
        raise ValueError(f"spacing must be {ndim} positive numbers, got {spacing!r}")
    return tuple(float(v) for v in values)


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred).astype(bool), np.asarray(true).astype(bool)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true differ in shape: {pred.shape} vs {true.shape}")
    return pred, true


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice of two boolean masks: 2|P&T| / (|P|+|T|); both empty -> 1.0, one empty -> 0.0."""
    pred, true = _pair(pred, true)
    total = int(pred.sum()) + int(true.sum())
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(pred, true).sum() / total)


def worst_case_distance(shape: Sequence[int], spacing: Spacing = None) -> float:
    """The diagonal of the volume in mm: no two voxels are further apart, so no real
    prediction can score a larger HD95 than a missed or spurious structure does."""
    sizes = np.asarray(shape, dtype=np.float64) * np.asarray(_spacing(spacing, len(shape)))
    return float(np.sqrt(np.sum(sizes**2)))


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels of a boolean mask: the mask minus its face-connected erosion (MONAI's
    `get_mask_edges`); voxels on the array border count as surface."""
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _crop_to_union(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union plus one background voxel on every
    side: distances are unchanged and the distance transform gets much smaller."""
    coords = np.nonzero(pred | true)
    box = tuple(slice(int(c.min()), int(c.max()) + 1) for c in coords)
    return (np.pad(pred[box], 1), np.pad(true[box], 1))


def _directed(
    from_surface: np.ndarray, to_surface: np.ndarray, spacing: tuple[float, ...]
) -> np.ndarray:
    """Distance in mm from each voxel of `from_surface` to the nearest voxel of `to_surface`."""
    distances = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return distances[from_surface]


def surface_distances(
    pred: np.ndarray, true: np.ndarray, spacing: Spacing = None
) -> tuple[np.ndarray, np.ndarray]:
    """(pred->true, true->pred) surface distances in mm of two non-empty boolean masks."""
    pred, true = _pair(pred, true)
    if not pred.any() or not true.any():
        raise ValueError("surface distances need two non-empty masks")
    sampling = _spacing(spacing, pred.ndim)
    pred, true = _crop_to_union(pred, true)
    pred_surface, true_surface = surface(pred), surface(true)
    return (
        _directed(pred_surface, true_surface, sampling),
        _directed(true_surface, pred_surface, sampling),
    )


def hd95(pred: np.ndarray, true: np.ndarray, spacing: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm of two boolean masks (2D or 3D).

    max(95th percentile of pred->true, 95th percentile of true->pred), as MONAI's default.
    Both empty -> 0.0; exactly one empty -> `worst_case_distance` (the volume's diagonal).
    Always a finite float.
    """
    pred, true = _pair(pred, true)
    has_pred, has_true = bool(pred.any()), bool(true.any())
    if not has_pred and not has_true:
        return 0.0
    if has_pred != has_true:
        return worst_case_distance(pred.shape, spacing)
    forward, backward = surface_distances(pred, true, spacing)
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))


def _case_spacings(spacings: Any, cases: int) -> list[Spacing]:
    """One spacing per case from None, one spacing shared by all, or a list of spacings."""
    if spacings is None or np.ndim(spacings) <= 1:
        return [spacings] * cases
    per_case = list(spacings)
    if len(per_case) != cases:
        raise ValueError(f"{len(per_case)} spacings for {cases} cases")
    return per_case


def segmentation_metrics(
    preds: Sequence[np.ndarray],
    trues: Sequence[np.ndarray],
    spacings: Spacing | Sequence[Spacing],
    label_names: Sequence[str],
) -> dict[str, float]:
    """Per-class and mean Dice and HD95 over cases of integer label maps (0 = background).

    For each foreground class (ids 1..len(label_names)-1) the per-case Dice and HD95 are
    averaged over all cases, empty ones included under the rules of `dice` and `hd95`.
    `spacings` is None (1 mm), one spacing for every case, or one per case. Keys:
    `dice_<name>`, `hd95_<name>` (names through `shared.metrics.slug`), `dice` and `hd95`
    (the mean over foreground classes of those per-class means), `hd95_worst_case_count`
    (how many (case, class) pairs scored the worst case: a missed or spurious structure)
    and `num_cases`. No value is ever NaN.
    """
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predictions for {len(trues)} ground truths")
    if not len(trues):
        raise ValueError("segmentation_metrics needs at least one case")
    if len(label_names) < 2:
        raise ValueError("label_names must name the background and at least one class")
    case_spacings = _case_spacings(spacings, len(trues))
    dices = np.zeros((len(trues), len(label_names) - 1))
    distances = np.zeros_like(dices)
    worst = 0
    for case, (pred, true, spacing) in enumerate(zip(preds, trues, case_spacings, strict=True)):
        pred, true = np.asarray(pred), np.asarray(true)
        for index in range(1, len(label_names)):
            p, t = pred == index, true == index
            dices[case, index - 1] = dice(p, t)
            distances[case, index - 1] = hd95(p, t, spacing)
            worst += int(p.any() != t.any())
    out: dict[str, float] = {}
    for index, name in enumerate(label_names[1:]):
        out[f"dice_{slug(name)}"] = float(dices[:, index].mean())
        out[f"hd95_{slug(name)}"] = float(distances[:, index].mean())
    out["dice"] = float(dices.mean(axis=0).mean())
    out["hd95"] = float(distances.mean(axis=0).mean())
    out["hd95_worst_case_count"] = worst
    out["num_cases"] = len(trues)
    return out


def lesion_detection(
    pred_mask: np.ndarray, true_mask: np.ndarray, min_overlap: float = 0.1
) -> dict[str, float]:
    """Lesion-wise detection from the connected components of two boolean lesion masks.

    Components use full connectivity (26 neighbours in 3D, 8 in 2D), so a lesion is one
    component even where it touches itself only at an edge or a corner. A true lesion is
    detected when some predicted component overlaps it with IoU >= `min_overlap` (and at
    least one shared voxel, so `min_overlap=0` means "any overlap"). IoU rather than any
    overlap, so a blob over the whole organ does not "detect" every lesion in it. A
    predicted component that reaches that IoU with no true lesion is a false positive.
    Sensitivity with no true lesions is 1.0 (nothing was missed), never NaN.
    """
    pred, true = _pair(pred_mask, true_mask)
    structure = ndimage.generate_binary_structure(true.ndim, true.ndim)
    true_labels, n_true = ndimage.label(true, structure=structure)
    pred_labels, n_pred = ndimage.label(pred, structure=structure)
    both = (true_labels > 0) & (pred_labels > 0)
    pair_index = true_labels[both].astype(np.int64) * (n_pred + 1) + pred_labels[both]
    intersection = np.bincount(pair_index, minlength=(n_true + 1) * (n_pred + 1)).reshape(
        n_true + 1, n_pred + 1
    )[1:, 1:]
    true_sizes = np.bincount(true_labels.ravel(), minlength=n_true + 1)[1:]
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)[1:]
    union = true_sizes[:, None] + pred_sizes[None, :] - intersection
    iou = intersection / np.maximum(union, 1)
    matched = (intersection > 0) & (iou >= min_overlap)
    detected = int(matched.any(axis=1).sum())
    return {
        "true_lesions": int(n_true),
        "predicted_lesions": int(n_pred),
        "detected": detected,
        "false_positive_components": int((~matched.any(axis=0)).sum()),
        "sensitivity": float(detected / n_true) if n_true else 1.0,
    }


def volumes_ml(mask: np.ndarray, spacing: Spacing, label_names: Sequence[str]) -> dict[str, float]:
    """`volume_ml_<name>` of every foreground class of a label map: voxels x voxel mm^3 / 1000."""
    mask = np.asarray(mask)
    voxel_mm3 = float(np.prod(_spacing(spacing, mask.ndim)))
    counts = np.bincount(mask.ravel().astype(np.int64), minlength=len(label_names))
    return {
        f"volume_ml_{slug(name)}": float(counts[index] * voxel_mm3 / 1000.0)
        for index, name in enumerate(label_names)
        if index > 0
    }
