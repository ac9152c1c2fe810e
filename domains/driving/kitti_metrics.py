"""KITTI 2D object AP in numpy: R40, easy/moderate/hard, DontCare regions.

Why hand-written: the official evaluator is C++ in KITTI's devkit (evaluate_object.cpp)
and reads label files from disk; pycocotools knows nothing of difficulty levels or
DontCare. The domain scores numpy predictions inside a run, so this follows the devkit's
2D box evaluation step for step:

- Difficulty: a ground-truth object counts at a level if its box is taller than the
  level's minimum height (40 / 25 / 25 px for easy / moderate / hard) and its occlusion
  (0 / 1 / 2) and truncation (0.15 / 0.3 / 0.5) are at most the level's; other objects
  of the class are ignored there (detecting them is neither a TP nor an FP, missing them
  no FN). Detections shorter than the minimum height (whole pixels, as the devkit's int
  cast) are ignored too.
- Matching: overlap must exceed the class's minimum IoU (0.7 vehicle, 0.5 pedestrian
  and cyclist, the devkit's Car / Pedestrian / Cyclist values). Recall thresholds are
  the scores of the true positives (best-scoring match per object); at each the best-
  overlapping detection takes each object. Unmatched detections whose area lies in a
  DontCare region by more than the minimum IoU (intersection over the detection's area)
  are not FPs.
- R40: the devkit samples at most 41 score thresholds spread over recall, makes precision
  non-increasing and averages the 40 after the first, times 100. As in the devkit, this
  reads true recall points only when a class has at least about 40 objects at that
  level; with fewer, the thresholds run out early and the AP is biased low (3 perfectly
  found objects score 5.0; asharakeh/kitti_native_evaluation#1, cguindel/eval_kitti#9).
  A class with no object at a level has no AP there (NaN; the devkit reports 0) and is
  left out of the means.

Classes are this set's own (`vehicle` is KITTI's Car with Van and Truck merged by the
reader's class map), so there are no "neighbouring classes" to ignore as the devkit does
for Van under Car; Tram and Misc are ignore regions by default (see `kitti.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from domains.driving.boxes import iou_matrix, overlap_of_first
from domains.driving.detection_metrics import Detections

# name: (minimum box height in px, maximum occlusion, maximum truncation)
DIFFICULTIES = {"easy": (40, 0, 0.15), "moderate": (25, 1, 0.3), "hard": (25, 2, 0.5)}
DEFAULT_MIN_IOU = {"vehicle": 0.7, "car": 0.7, "pedestrian": 0.5, "cyclist": 0.5}
FALLBACK_MIN_IOU = 0.5
N_SAMPLE_PTS = 41


@dataclass(frozen=True)
class KittiResult:
    """ap[difficulty][class name]: R40 AP in percent (NaN with no object at that level)."""

    ap: dict[str, dict[str, float]]

    def metrics(self) -> dict[str, float]:
        """`kitti_ap_easy|moderate|hard` (means over classes) and `kitti_ap_moderate_<class>`."""
        out = {}
        for level, per_class in self.ap.items():
            values = [v for v in per_class.values() if not np.isnan(v)]
            out[f"kitti_ap_{level}"] = float(np.mean(values)) if values else float("nan")
        for name, value in self.ap["moderate"].items():
            out[f"kitti_ap_moderate_{name}"] = value
        return out


def kitti_evaluate(
    truths: Sequence,
    detections: Sequence[Detections],
    class_names: Sequence[str],
    *,
    min_iou: Mapping[str, float] | None = None,
) -> KittiResult:
    """R40 AP of `detections` against `truths` (frames with `.boxes`, `.classes`,
    `.truncation`, `.occlusion`, `.ignore_boxes`), one entry per frame in order."""
    if len(truths) != len(detections):
        raise ValueError(
            f"{len(truths)} frames of ground truth but {len(detections)} of detections"
        )
    min_iou = {**DEFAULT_MIN_IOU, **(min_iou or {})}
    ap: dict[str, dict[str, float]] = {}
    for level, limits in DIFFICULTIES.items():
        ap[level] = {}
        for k, name in enumerate(class_names):
            threshold = min_iou.get(name, FALLBACK_MIN_IOU)
            frames = [_prepare(t, d, k, limits) for t, d in zip(truths, detections, strict=True)]
            ap[level][name] = _class_ap(frames, threshold)
    return KittiResult(ap)


def kitti_ap(
    truths: Sequence,
    detections: Sequence[Detections],
    class_names: Sequence[str],
    *,
    min_iou: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """`kitti_ap_easy`, `kitti_ap_moderate`, `kitti_ap_hard`, `kitti_ap_moderate_<class>`."""
    return kitti_evaluate(truths, detections, class_names, min_iou=min_iou).metrics()


@dataclass
class _Frame:
    """One frame seen for one class and difficulty (the devkit's cleanData)."""

    ignored_gt: np.ndarray  # 0 counts, 1 ignored (too hard), -1 another class
    ignored_det: np.ndarray  # 0 counts, 1 ignored (too short), -1 another class
    scores: np.ndarray
    overlaps: np.ndarray  # (detections, ground truth) IoU
    dc_overlaps: np.ndarray  # (detections, DontCare regions) intersection over detection

    @property
    def num_valid(self) -> int:
        return int(np.sum(self.ignored_gt == 0))


def _prepare(truth, det: Detections, k: int, limits: tuple[float, int, float]) -> _Frame:
    min_height, max_occlusion, max_truncation = limits
    gt_boxes = np.asarray(truth.boxes, np.float64).reshape(-1, 4)
    gt_height = gt_boxes[:, 3] - gt_boxes[:, 1]
    valid = np.asarray(truth.classes) == k
    hard = (
        (np.asarray(truth.occlusion) > max_occlusion)
        | (np.asarray(truth.truncation) > max_truncation)
        | (gt_height <= min_height)
    )
    ignored_gt = np.where(valid & ~hard, 0, np.where(valid, 1, -1))
    det_height = np.trunc(np.abs(det.boxes[:, 3].astype(np.float64) - det.boxes[:, 1]))
    ignored_det = np.where(det_height < min_height, 1, np.where(det.classes == k, 0, -1))
    return _Frame(
        ignored_gt=ignored_gt,
        ignored_det=ignored_det,
        scores=det.scores.astype(np.float64),
        overlaps=iou_matrix(det.boxes, gt_boxes),
        dc_overlaps=overlap_of_first(det.boxes, truth.ignore_boxes),
    )


def _statistics(
    f: _Frame, min_overlap: float, compute_fp: bool, thresh: float = 0.0
) -> tuple[int, int, int, list[float]]:
    """(tp, fp, fn, scores of the true positives) of one frame: the devkit's
    computeStatistics, vectorised over detections."""
    num_det = len(f.scores)
    assigned = np.zeros(num_det, bool)
    below = f.scores < thresh if compute_fp else np.zeros(num_det, bool)
    usable_det = (f.ignored_det != -1) & ~below
    tp = fp = fn = 0
    tp_scores: list[float] = []
    for i in np.flatnonzero(f.ignored_gt != -1):
        candidates = usable_det & ~assigned & (f.overlaps[:, i] > min_overlap)
        j = -1
        if not compute_fp:
            if candidates.any():  # the best score; the first of equal ones
                j = int(np.argmax(np.where(candidates, f.scores, -np.inf)))
        else:
            counted = candidates & (f.ignored_det == 0)
            if counted.any():  # the best overlap among counted detections
                j = int(np.argmax(np.where(counted, f.overlaps[:, i], -np.inf)))
            elif candidates.any():  # else an ignored (too short) one absorbs it
                j = int(np.argmax(candidates))
        if j < 0:
            fn += int(f.ignored_gt[i] == 0)
        elif f.ignored_gt[i] == 1 or f.ignored_det[j] == 1:
            assigned[j] = True
        else:
            tp += 1
            tp_scores.append(float(f.scores[j]))
            assigned[j] = True
    if compute_fp:
        free = ~assigned & (f.ignored_det == 0) & ~below
        fp = int(np.sum(free))
        for c in range(f.dc_overlaps.shape[1]):
            inside = free & ~assigned & (f.dc_overlaps[:, c] > min_overlap)
            assigned |= inside
            fp -= int(np.sum(inside))
    return tp, fp, fn, tp_scores


def _thresholds(scores: list[float], num_gt: int) -> list[float]:
    """The devkit's getThresholds: TP scores, best first, thinned to about one per
    1/40 of recall."""
    scores = sorted(scores, reverse=True)
    current, picked = 0.0, []
    for i, score in enumerate(scores):
        l_recall = (i + 1) / num_gt
        r_recall = (i + 2) / num_gt if i < len(scores) - 1 else l_recall
        if (r_recall - current) < (current - l_recall) and i < len(scores) - 1:
            continue
        picked.append(score)
        current += 1.0 / (N_SAMPLE_PTS - 1.0)
    return picked


def _class_ap(frames: list[_Frame], min_overlap: float) -> float:
    num_gt = sum(f.num_valid for f in frames)
    if num_gt == 0:
        return float("nan")
    tp_scores = [s for f in frames for s in _statistics(f, min_overlap, False)[3]]
    thresholds = _thresholds(tp_scores, num_gt)
    precision = np.zeros(N_SAMPLE_PTS)
    for t, thresh in enumerate(thresholds[:N_SAMPLE_PTS]):
        tp = fp = 0
        for f in frames:
            a, b, _, _ = _statistics(f, min_overlap, True, thresh)
            tp, fp = tp + a, fp + b
        precision[t] = tp / (tp + fp) if tp + fp else 0.0
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(precision[1:]) / (N_SAMPLE_PTS - 1) * 100)
