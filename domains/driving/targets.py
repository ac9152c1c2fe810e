"""FCOS training targets: which feature-map locations predict which box, and how.

FCOS (Tian et al., 2019/2020) is anchor-free: every location of every pyramid level
is a candidate. A location is positive for a box when it lies inside the box, within
`radius` strides of the box centre (centre sampling, FCOS v2), and the box's largest
distance from it, max(l, t, r, b), falls in its level's size range; a location inside
several boxes takes the smallest. Its targets are the class, the distances (l, t, r,
b) in input pixels, and the centerness sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b)).

Locations are every level's cells in row-major order, finest level first, at the cell
centres ((j + 0.5) * stride, (i + 0.5) * stride): the order the model's head outputs
are concatenated in. Written in numpy because it runs per frame in the input pipeline,
after augmentation has moved the boxes; Keras and KerasHub have no FCOS assigner.
"""

from __future__ import annotations

import numpy as np

from shared.zoo.fcos import Levels


def centerness(ltrb: np.ndarray) -> np.ndarray:
    """FCOS centerness of distances (..., 4); 0 where any distance is not positive."""
    ltrb = np.maximum(np.asarray(ltrb, np.float32), 0.0)
    lr, tb = ltrb[..., [0, 2]], ltrb[..., [1, 3]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (lr.min(-1) / lr.max(-1)) * (tb.min(-1) / tb.max(-1))
    return np.sqrt(np.nan_to_num(ratio, nan=0.0)).astype(np.float32)


class FCOSAssigner:
    """Per-frame FCOS targets for a fixed input size: `assign(boxes, classes)`.

    Returns `cls` (N, num_classes) one-hot (all zero for background, all -1 for a
    background location inside an `ignore` region: no class loss there), `box` (N, 5):
    l, t, r, b in pixels then the centerness target (0 for background, so the box
    loss can weight and mask by it), and `centerness` (N, 1): the target, -1 for
    background (no loss there).
    """

    def __init__(self, levels: Levels, num_classes: int, radius: float = 1.5):
        self.levels = levels
        self.num_classes = int(num_classes)
        self.radius = float(radius)
        self.centres, self.strides, self.ranges = levels.locations()

    def assign(
        self, boxes: np.ndarray, classes: np.ndarray, ignore: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.centres)
        cls = np.zeros((n, self.num_classes), np.float32)
        box = np.zeros((n, 5), np.float32)
        ctr = -np.ones((n, 1), np.float32)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        classes = np.asarray(classes, np.int64).reshape(-1)
        if ignore is not None and len(ignore):
            ignore = np.asarray(ignore, np.float32).reshape(-1, 4)
            x, y = self.centres[:, :1], self.centres[:, 1:]
            inside = (
                (x > ignore[:, 0]) & (x < ignore[:, 2]) & (y > ignore[:, 1]) & (y < ignore[:, 3])
            )
            cls[inside.any(axis=1)] = -1.0  # positives below overwrite their rows
        if not len(boxes):
            return cls, box, ctr
        x = self.centres[:, :1]  # (N, 1) against (1, M)
        y = self.centres[:, 1:]
        ltrb = np.stack(
            [x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], axis=-1
        )  # (N, M, 4)
        inside = ltrb.min(-1) > 0
        reach = (self.radius * self.strides)[:, None]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        near = (np.abs(x - cx) < reach) & (np.abs(y - cy) < reach)
        extent = ltrb.max(-1)
        in_range = (extent >= self.ranges[:, :1]) & (extent < self.ranges[:, 1:])
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        cost = np.where(inside & near & in_range, area[None, :], np.inf)
        best = cost.argmin(axis=1)
        positive = np.isfinite(cost[np.arange(n), best])
        idx = np.nonzero(positive)[0]
        chosen = ltrb[idx, best[idx]]
        cls[idx] = 0.0
        cls[idx, classes[best[idx]]] = 1.0
        box[idx, :4] = chosen
        box[idx, 4] = centerness(chosen)
        ctr[idx, 0] = box[idx, 4]
        return cls, box, ctr
