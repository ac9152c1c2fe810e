"""KITTI AP (R40, difficulties, DontCare) on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from domains.driving.detection_metrics import Detections
from domains.driving.detection_set import Frame
from domains.driving.kitti_metrics import kitti_ap, kitti_evaluate

NAMES = ["vehicle", "pedestrian", "cyclist"]


def _row_frame(
    n: int, k: int, *, height: float = 60, occlusion: int = 0, truncation: float = 0.0, ignore=()
) -> Frame:
    """n objects of class k side by side, 40 px wide, `height` tall."""
    x = np.arange(n) * 50.0
    boxes = np.stack([x, np.full(n, 100.0), x + 40, np.full(n, 100.0 + height)], axis=1)
    return Frame(
        "f.png",
        375,
        5000,
        boxes,
        np.full(n, k),
        truncation=np.full(n, truncation),
        occlusion=np.full(n, occlusion),
        ignore_boxes=np.array(ignore, np.float32).reshape(-1, 4),
    )


def test_perfect_detector_scores_100_at_every_level():
    # 60 objects per class and level; easy ones count at every level
    truths = [_row_frame(60, k) for k in range(3)]
    truths += [_row_frame(60, k, height=30, occlusion=1, truncation=0.2) for k in range(3)]
    truths += [_row_frame(60, k, height=30, occlusion=2, truncation=0.4) for k in range(3)]
    dets = [Detections(t.boxes, np.linspace(0.9, 0.1, len(t.boxes)), t.classes) for t in truths]
    out = kitti_ap(truths, dets, NAMES)
    for key in (
        "kitti_ap_easy",
        "kitti_ap_moderate",
        "kitti_ap_hard",
        "kitti_ap_moderate_vehicle",
        "kitti_ap_moderate_pedestrian",
        "kitti_ap_moderate_cyclist",
    ):
        assert out[key] == pytest.approx(100.0), key


def test_detections_in_dontcare_are_not_false_positives():
    truth = _row_frame(60, 0, ignore=[[4000, 0, 4400, 300]])
    scores = np.linspace(0.9, 0.2, 60)
    # 5 confident detections inside the DontCare region, above every true one
    extra = np.array([[4000 + 60 * i, 50, 4040 + 60 * i, 110] for i in range(5)], np.float32)
    det = Detections(
        np.concatenate([truth.boxes, extra]),
        np.concatenate([scores, np.full(5, 0.95)]),
        np.zeros(65, int),
    )
    assert kitti_ap([truth], [det], ["vehicle"])["kitti_ap_moderate"] == pytest.approx(100.0)
    # the same detections without the region are false positives ranked first
    bare = _row_frame(60, 0)
    assert kitti_ap([bare], [det], ["vehicle"])["kitti_ap_moderate"] < 95.0


def test_hard_only_object_does_not_count_at_easy():
    easy = _row_frame(60, 0)
    hard = _row_frame(20, 0, height=30, occlusion=2, truncation=0.4)  # hard only
    truths = [easy, hard]
    found = [
        Detections(easy.boxes, np.linspace(0.9, 0.2, 60), easy.classes),
        Detections(hard.boxes, np.full(20, 0.95), hard.classes),
    ]
    missed = [found[0], Detections()]
    r_found = kitti_evaluate(truths, found, ["vehicle"]).ap
    r_missed = kitti_evaluate(truths, missed, ["vehicle"]).ap
    # at easy the hard object neither helps when found nor hurts when missed
    assert r_found["easy"]["vehicle"] == pytest.approx(100.0)
    assert r_missed["easy"]["vehicle"] == pytest.approx(100.0)
    # at hard they count: missing them loses a quarter of the recall
    assert r_found["hard"]["vehicle"] == pytest.approx(100.0)
    assert r_missed["hard"]["vehicle"] == pytest.approx(75.0, abs=2.5)


def _explicit_r40(is_tp: np.ndarray, num_gt: int) -> float:
    """Textbook 40-point interpolated AP over a ranked list of TP/FP."""
    tp = np.cumsum(is_tp)
    precision = tp / np.arange(1, len(is_tp) + 1)
    recall = tp / num_gt
    points = np.arange(1, 41) / 40
    return 100 * np.mean([precision[recall >= r - 1e-12].max(initial=0.0) for r in points])


def test_r40_matches_an_explicit_calculation():
    # 80 objects found in score order, with false alarms after some of the even-numbered
    # hits (so each 1/40 of recall is reached at a sampled threshold)
    truth = _row_frame(80, 1)
    rng = np.random.default_rng(3)
    ranked, boxes = [], []
    for i in range(80):
        ranked.append(True)
        boxes.append(truth.boxes[i])
        if i % 2 == 1 and rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 3))):
                ranked.append(False)
                boxes.append([4500, 300, 4540, 360])  # tall enough, nowhere near an object
    scores = np.linspace(0.99, 0.01, len(ranked))
    det = Detections(np.array(boxes), scores, np.ones(len(ranked), int))
    ours = kitti_ap([truth], [det], NAMES)["kitti_ap_moderate_pedestrian"]
    expected = _explicit_r40(np.array(ranked), 80)
    assert expected < 95.0
    assert ours == pytest.approx(expected, abs=1e-9)


def test_iou_thresholds_per_class_and_few_objects():
    truth = _row_frame(60, 0)
    truth_ped = _row_frame(60, 1)
    shifted = truth.boxes + [8, 0, 8, 0]  # IoU 32/48 = 0.667 with its object
    out = kitti_ap(
        [truth, truth_ped],
        [
            Detections(shifted, np.linspace(0.9, 0.2, 60), truth.classes),
            Detections(
                truth_ped.boxes + [8, 0, 8, 0], np.linspace(0.9, 0.2, 60), truth_ped.classes
            ),
        ],
        NAMES,
    )
    assert out["kitti_ap_moderate_vehicle"] == 0.0  # needs IoU > 0.7
    assert out["kitti_ap_moderate_pedestrian"] == pytest.approx(100.0)  # needs > 0.5
    assert np.isnan(out["kitti_ap_moderate_cyclist"])  # no cyclists: no AP, not in the mean
    assert out["kitti_ap_moderate"] == pytest.approx(50.0)
    # the devkit's recall sampling with few objects: 3 found perfectly score 2/40
    few = _row_frame(3, 0)
    assert kitti_ap([few], [Detections(few.boxes, [0.9, 0.8, 0.7], few.classes)], ["vehicle"])[
        "kitti_ap_easy"
    ] == pytest.approx(5.0)
