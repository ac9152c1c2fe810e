"""Our COCO mAP against pycocotools' COCOeval on the same predictions."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from domains.driving.detection_metrics import Detections, coco_evaluate, coco_map
from domains.driving.detection_set import Frame

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

NAMES = ["vehicle", "pedestrian", "cyclist"]


def _random_set(seed: int) -> tuple[list[Frame], list[Detections]]:
    """Crowded scenes: clusters of overlapping boxes, jittered detections of them,
    false alarms, images with no ground truth, and cyclists never predicted."""
    rng = np.random.default_rng(seed)
    truths, dets = [], []
    for i in range(10):
        if i % 4 == 3:
            gt = np.zeros((0, 4))
            classes = np.zeros(0, int)
        else:
            centres = rng.uniform(40, 260, (3, 2))
            n = int(rng.integers(4, 14))
            xy = centres[rng.integers(0, 3, n)] + rng.normal(0, 12, (n, 2))
            wh = rng.uniform(12, 50, (n, 2))
            gt = np.concatenate([xy, xy + wh], axis=1)
            classes = rng.integers(0, 3, n)
        truths.append(Frame(f"{i}.png", 320, 320, gt, classes))
        found = rng.random(len(gt)) < 0.8
        hits, hit_classes = gt[found], classes[found]
        jitter = hits + rng.normal(0, 3, hits.shape)
        noise_xy = rng.uniform(0, 280, (int(rng.integers(0, 6)), 2))
        noise = np.concatenate([noise_xy, noise_xy + rng.uniform(10, 40, noise_xy.shape)], 1)
        boxes = np.concatenate([jitter, noise])
        labels = np.concatenate([hit_classes, rng.integers(0, 3, len(noise))])
        labels[labels == 2] = rng.integers(0, 2, int(np.sum(labels == 2)))  # no cyclist predictions
        scores = rng.random(len(boxes))
        dets.append(Detections(boxes, scores, labels))
    return truths, dets


def _pycocotools(truths, dets) -> COCOeval:
    images = [{"id": i + 1, "width": t.width, "height": t.height} for i, t in enumerate(truths)]
    anns = []
    for i, t in enumerate(truths):
        for b, c in zip(t.boxes.astype(float), t.classes, strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    results = [
        {
            "image_id": i + 1,
            "category_id": int(c) + 1,
            "score": float(s),
            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
        }
        for i, d in enumerate(dets)
        for b, c, s in zip(d.boxes.astype(float), d.classes, d.scores, strict=True)
    ]
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.mark.parametrize("seed", range(6))
def test_map_matches_pycocotools(seed):
    truths, dets = _random_set(seed)
    ours = coco_map(truths, dets, NAMES)
    ref = _pycocotools(truths, dets)
    assert 0.05 < ours["map_50"] < 0.95  # a case with something to get right
    assert ours["map"] == pytest.approx(ref.stats[0], abs=1e-6)
    assert ours["map_50"] == pytest.approx(ref.stats[1], abs=1e-6)
    assert ours["map_75"] == pytest.approx(ref.stats[2], abs=1e-6)
    # per class at IoU 0.5: area "all", maxDets 100
    p = ref.eval["precision"][0, :, :, 0, 2]
    for k, name in enumerate(NAMES):
        expected = p[:, k].mean() if (p[:, k] > -1).all() else float("nan")
        assert ours[f"ap_50_{name}"] == pytest.approx(expected, abs=1e-6, nan_ok=True)
    assert ours["ap_50_cyclist"] == 0.0  # ground truth, never predicted
    np.testing.assert_allclose(
        coco_evaluate(truths, dets, NAMES).precision,
        ref.eval["precision"][:, :, :, 0, 2],
        atol=1e-9,
    )


def test_perfect_detector_and_class_without_ground_truth():
    truths, _ = _random_set(0)
    dets = [Detections(t.boxes, np.linspace(1, 0.5, len(t.boxes)), t.classes) for t in truths]
    ours = coco_map(truths, dets, [*NAMES, "bus"])
    assert ours["map"] == pytest.approx(1.0) and ours["map_75"] == pytest.approx(1.0)
    assert np.isnan(ours["ap_50_bus"])  # no ground truth: no AP, and not in the mean
    with pytest.raises(ValueError, match="frames of ground truth"):
        coco_map(truths[:2], dets, NAMES)
