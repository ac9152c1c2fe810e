"""COCO box mAP in numpy: `map` (IoU 0.50:0.05:0.95), `map_50`, `map_75`, `ap_50_<class>`.

Why hand-written: pycocotools is C plus its own JSON annotation format, made for whole
COCO files, and KITTI's evaluator (`kitti_metrics`) is C++ in its devkit. The domain
needs both as plain functions over numpy arrays, inside a training run and without
a C build, so they are written here and the tests check this one against pycocotools'
COCOeval on the same predictions.

It follows COCOeval (bbox, area range "all", maxDets 100) step for step: per image and
class the detections are sorted by score (stably) and cut to 100; at each IoU threshold
each detection, best score first, takes the unmatched ground-truth box it overlaps most
(IoU >= threshold; on ties the later box, as COCOeval's loop does); per class all images'
detections are merged by score, precision made non-increasing, and read at 101 recall
points (the first detection reaching each recall, 0 past the last recall reached). A
class without ground truth has no AP (NaN; COCOeval's -1) and is left out of the means;
a class with ground truth and no detections has AP 0. No crowd regions: every ground
truth box counts (KITTI's DontCare regions are `kitti_metrics`' business).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from domains.driving.boxes import iou_matrix

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


@dataclass(eq=False)
class Detections:
    """A model's detections on one frame: pixel boxes (x1, y1, x2, y2), scores, class ids."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.classes = np.asarray(self.classes, np.int32).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise ValueError(
                f"{len(self.boxes)} boxes, {len(self.scores)} scores and "
                f"{len(self.classes)} classes: they must be as many"
            )


@dataclass(frozen=True)
class CocoResult:
    """precision[t, r, k]: interpolated precision at IoU threshold t, recall point r,
    class k (-1 for a class without ground truth); recall[t, k]: the recall reached."""

    precision: np.ndarray
    recall: np.ndarray
    class_names: tuple[str, ...]

    def metrics(self) -> dict[str, float]:
        """`map`, `map_50`, `map_75` and `ap_50_<class>` (NaN where nothing to score)."""
        p = self.precision
        out = {
            "map": _mean_valid(p),
            "map_50": _mean_valid(p[0]),
            "map_75": _mean_valid(p[5]),
        }
        for k, name in enumerate(self.class_names):
            out[f"ap_50_{name}"] = _mean_valid(p[0, :, k])
        return out


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def coco_evaluate(
    truths: Sequence, detections: Sequence[Detections], class_names: Sequence[str]
) -> CocoResult:
    """COCO box AP of `detections` against `truths` (frames: `.boxes`, `.classes`),
    one entry per frame in the same order."""
    if len(truths) != len(detections):
        raise ValueError(
            f"{len(truths)} frames of ground truth but {len(detections)} of detections"
        )
    num_t, num_k = len(IOU_THRESHOLDS), len(class_names)
    precision = -np.ones((num_t, len(RECALL_POINTS), num_k))
    recall = -np.ones((num_t, num_k))
    for k in range(num_k):
        scores, matched, num_gt, seen = [], [], 0, False
        for truth, det in zip(truths, detections, strict=True):
            gt = np.asarray(truth.boxes).reshape(-1, 4)[np.asarray(truth.classes) == k]
            mine = det.classes == k
            d_boxes, d_scores = det.boxes[mine], det.scores[mine]
            if not len(gt) and not len(d_boxes):
                continue
            seen = True
            order = np.argsort(-d_scores, kind="mergesort")[:MAX_DETECTIONS]
            d_boxes, d_scores = d_boxes[order], d_scores[order]
            scores.append(d_scores)
            matched.append(_match(iou_matrix(d_boxes, gt), IOU_THRESHOLDS))
            num_gt += len(gt)
        if not seen or num_gt == 0:
            continue
        all_scores = np.concatenate(scores)
        order = np.argsort(-all_scores, kind="mergesort")
        tps = np.concatenate(matched, axis=1)[:, order]
        for t in range(num_t):
            precision[t, :, k], recall[t, k] = _interpolated_precision(tps[t], num_gt)
    return CocoResult(precision, recall, tuple(class_names))


def _match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """matched[t, d]: whether detection d (sorted by score) takes a ground-truth box at
    threshold t, greedily, as COCOeval.evaluateImg does without crowd or ignored boxes."""
    num_d, num_g = ious.shape
    matched = np.zeros((len(thresholds), num_d), bool)
    if not num_g:
        return matched
    for t, threshold in enumerate(thresholds):
        limit = min(threshold, 1 - 1e-10)
        taken = np.zeros(num_g, bool)
        for d in range(num_d):
            row = np.where(taken, -1.0, ious[d])
            g = num_g - 1 - int(np.argmax(row[::-1]))  # the last of equal best overlaps
            if row[g] >= limit:
                taken[g] = True
                matched[t, d] = True
    return matched


def _interpolated_precision(tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, float]:
    """Precision at the 101 recall points, and the final recall, as COCOeval.accumulate."""
    tp_sum = np.cumsum(tp).astype(float)
    fp_sum = np.cumsum(~tp).astype(float)
    q = np.zeros(len(RECALL_POINTS))
    if not len(tp):
        return q, 0.0
    rc = tp_sum / num_gt
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    inds = np.searchsorted(rc, RECALL_POINTS, side="left")
    valid = inds < len(pr)
    q[valid] = pr[inds[valid]]
    return q, float(rc[-1])


def coco_map(
    truths: Sequence, detections: Sequence[Detections], class_names: Sequence[str]
) -> dict[str, float]:
    """`map`, `map_50`, `map_75` and `ap_50_<class>` of `detections` against `truths`."""
    return coco_evaluate(truths, detections, class_names).metrics()
