"""Box geometry in numpy: boxes are (..., 4) arrays of pixels (x1, y1, x2, y2).

No +1 in widths: boxes are continuous coordinates, as COCO and KITTI's evaluators
measure them.
"""

from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Area of each box; inverted boxes have area 0."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection areas."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None, :, :]
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union; 0 where the union is empty."""
    inter = intersections(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def overlap_of_first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over the area of each box of `a` (KITTI's criterion
    for a detection inside a DontCare region)."""
    inter = intersections(a, b)
    area = box_areas(a)[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def clip_boxes(boxes: np.ndarray, height: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the image, and a mask of those that changed."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    limits = np.array([width, height, width, height], np.float32)
    clipped = np.clip(boxes, 0.0, limits)
    return clipped, np.any(clipped != boxes, axis=1)


def yolo_to_xyxy(cxcywh: np.ndarray, height: float, width: float) -> np.ndarray:
    """YOLO's normalised (cx, cy, w, h) as pixel (x1, y1, x2, y2), float32."""
    c = np.asarray(cxcywh, np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], np.float64)
    xyxy = np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)
    return (xyxy * scale).astype(np.float32)


def xyxy_to_yolo(boxes: np.ndarray, height: float, width: float) -> np.ndarray:
    """Pixel (x1, y1, x2, y2) as YOLO's normalised (cx, cy, w, h), float32."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], np.float64)
    n = b / scale
    out = np.concatenate([(n[:, :2] + n[:, 2:]) / 2, n[:, 2:] - n[:, :2]], axis=1)
    return out.astype(np.float32)
