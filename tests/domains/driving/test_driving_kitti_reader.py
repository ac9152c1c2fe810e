"""kitti:PATH reader: layout, class map, DontCare regions, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from domains.driving.kitti import IGNORE, read_kitti
from shared.errors import UserError

LABELS = [
    "Car 0.00 0 -1.58 100.00 150.00 300.00 250.00 1.5 1.6 3.9 1.0 1.7 20.0 -1.5",
    "Van 0.20 1 -1.58 400.00 150.00 500.00 240.00 2.0 1.8 4.5 3.0 1.7 25.0 -1.5",
    "Pedestrian 0.00 2 0.2 600.00 100.00 630.00 180.00 1.7 0.6 0.8 5.0 1.7 15.0 0.1",
    "Cyclist 0.00 0 0.2 700.00 100.00 740.00 180.00 1.7 0.6 1.8 6.0 1.7 15.0 0.1",
    "Tram 0.00 0 0.2 800.00 100.00 900.00 200.00 3.0 2.5 15.0 8.0 1.7 40.0 0.1",
    "DontCare -1 -1 -10 1000.00 160.00 1100.00 200.00 -1 -1 -1 -1000 -1000 -1000 -10",
    "Car 0.00 0 -1.58 1200.00 150.00 1300.00 250.00 1.5 1.6 3.9 1.0 1.7 20.0 -1.5",
]


def _kitti(root: Path, n: int = 2) -> Path:
    (root / "training" / "image_2").mkdir(parents=True)
    (root / "training" / "label_2").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.zeros((375, 1242, 3), np.uint8)).save(
            root / "training" / "image_2" / f"{i:06d}.png"
        )
        (root / "training" / "label_2" / f"{i:06d}.txt").write_text("\n".join(LABELS) + "\n")
    return root


def test_root_and_training_folder_read_the_same(tmp_path):
    root = _kitti(tmp_path)
    a, b = read_kitti(root), read_kitti(root / "training")
    assert list(a.splits) == ["train"] and len(a.splits["train"]) == 2
    assert a.class_names == ["vehicle", "pedestrian", "cyclist"] and not a.has_masks
    fa, fb = a.splits["train"][0], b.splits["train"][0]
    np.testing.assert_array_equal(fa.boxes, fb.boxes)
    # Car, Van (vehicle), Pedestrian, Cyclist, and the last Car clipped to x 1242
    np.testing.assert_array_equal(fa.classes, [0, 0, 1, 2, 0])
    np.testing.assert_allclose(fa.boxes[-1], [1200, 150, 1242, 250])
    np.testing.assert_allclose(fa.truncation, [0, 0.2, 0, 0, 0])
    np.testing.assert_array_equal(fa.occlusion, [0, 1, 2, 0, 0])
    # Tram and DontCare become ignore regions
    np.testing.assert_allclose(fa.ignore_boxes, [[800, 100, 900, 200], [1000, 160, 1100, 200]])
    assert a.report["boxes_clipped"] == 2 and a.report["ignore_regions"] == 4


def test_custom_class_map(tmp_path):
    root = _kitti(tmp_path, n=1)
    cmap = {
        "Car": "car",
        "Van": None,
        "Pedestrian": "person",
        "Cyclist": "person",
        "Tram": IGNORE,
        "DontCare": IGNORE,
    }
    data = read_kitti(root, class_map=cmap)
    frame = data.splits["train"][0]
    assert data.class_names == ["car", "person"]
    np.testing.assert_array_equal(frame.classes, [0, 1, 1, 0])
    assert data.report["objects_dropped_by_class_map"] == 1


def test_type_outside_the_map_names_file_and_line(tmp_path):
    root = _kitti(tmp_path, n=1)
    with pytest.raises(
        UserError, match=r"000000\.txt line 3: type 'Pedestrian' is not in the class map"
    ):
        read_kitti(root, class_map={"Car": "car", "Van": "car", "DontCare": IGNORE})


def test_wrong_field_count(tmp_path):
    root = _kitti(tmp_path, n=1)
    (root / "training" / "label_2" / "000000.txt").write_text("Car 0 0 0 1 2 3 4\n")
    with pytest.raises(UserError, match=r"line 1: a KITTI label line has 15 fields.*got 8"):
        read_kitti(root)


def test_missing_partners_and_wrong_folder(tmp_path):
    root = _kitti(tmp_path, n=2)
    (root / "training" / "label_2" / "000001.txt").unlink()
    (root / "training" / "label_2" / "000009.txt").write_text(LABELS[0] + "\n")
    data = read_kitti(root)
    assert data.report["images_without_labels"] == 1 and data.report["labels_without_images"] == 1
    assert len(data.splits["train"][1].boxes) == 0
    with pytest.raises(UserError, match="neither a KITTI object root"):
        read_kitti(tmp_path / "training" / "label_2")
