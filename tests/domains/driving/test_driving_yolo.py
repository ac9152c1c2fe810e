"""yolo:PATH reader: both Ultralytics arrangements, classes.txt, masks and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from domains.driving.yolo import read_yolo
from shared.errors import UserError


def _image(path: Path, w: int = 200, h: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


def _label(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _mask(path: Path, w: int = 200, h: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((h, w), np.uint8)
    m[h // 2 :] = 1
    Image.fromarray(m).save(path)


def _images_first(root: Path, *, masks: bool = True) -> Path:
    """images/train + labels/train (+ masks/train), val likewise; names as a dict."""
    for split in ("train", "val"):
        for i in range(2):
            _image(root / "images" / split / f"{split}{i}.png")
            _label(
                root / "labels" / split / f"{split}{i}.txt",
                ["0 0.5 0.5 0.2 0.4", "1 0.25 0.25 0.1 0.1"],
            )
            if masks:
                _mask(root / "masks" / split / f"{split}{i}.png")
    (root / "data.yaml").write_text(
        yaml.safe_dump(
            {
                "path": ".",
                "train": "images/train",
                "val": "images/val",
                "names": {0: "vehicle", 1: "pedestrian"},
                "mask_names": ["background", "road", "lane_marking"],
            }
        )
    )
    return root


def test_images_first_layout_with_masks(tmp_path):
    data = read_yolo(_images_first(tmp_path))
    assert data.class_names == ["vehicle", "pedestrian"]
    assert set(data.splits) == {"train", "validation"}
    assert data.has_masks and data.mask_names == ["background", "road", "lane_marking"]
    frame = data.splits["train"][0]
    assert (frame.height, frame.width) == (100, 200)
    # 0.5 0.5 0.2 0.4 of 200x100 -> x 80..120, y 30..70
    np.testing.assert_allclose(frame.boxes, [[80, 30, 120, 70], [40, 20, 60, 30]], atol=1e-4)
    np.testing.assert_array_equal(frame.classes, [0, 1])
    assert frame.mask_path.endswith("masks/train/train0.png")
    assert data.report["images"] == 4 and data.report["boxes"] == 8
    assert data.report["boxes_clipped"] == 0 and data.report["labels_without_images"] == 0


def test_split_first_layout_without_masks_is_detection_only(tmp_path):
    for split in ("train", "valid", "test"):
        _image(tmp_path / split / "images" / "a.jpg", w=64, h=48)
        _label(tmp_path / split / "labels" / "a.txt", ["2 0.5 0.5 1.0 1.0"])
    (tmp_path / "data.yaml").write_text(
        "train: train/images\nval: valid/images\ntest: test/images\nnames: [car, bus, truck]\n"
    )
    data = read_yolo(f"{tmp_path}/data.yaml")
    assert set(data.splits) == {"train", "validation", "test"}
    assert not data.has_masks and any("detection only" in n for n in data.notes)
    np.testing.assert_allclose(data.splits["test"][0].boxes, [[0, 0, 64, 48]])
    assert data.splits["test"][0].mask_path is None


def test_classes_txt_flat_folder(tmp_path):
    (tmp_path / "classes.txt").write_text("vehicle\npedestrian\n\n")
    _image(tmp_path / "images" / "x.png")
    _label(tmp_path / "labels" / "x.txt", ["1 0.5 0.5 0.5 0.5"])
    _label(tmp_path / "labels" / "classes.txt", ["vehicle", "pedestrian"])  # LabelImg's copy
    data = read_yolo(tmp_path)
    assert list(data.splits) == ["train"] and data.class_names == ["vehicle", "pedestrian"]
    assert data.report["labels_without_images"] == 0
    np.testing.assert_array_equal(data.splits["train"][0].classes, [1])


def test_bad_boxes_and_missing_partners_are_counted(tmp_path):
    root = _images_first(tmp_path, masks=False)
    _label(
        root / "labels" / "train" / "train0.txt",
        [
            "0 0.95 0.5 0.2 0.2",  # right edge at 1.05: clipped
            "0 0.5 0.5 0.0 0.3",  # zero width: dropped
            "1 1.5 1.5 0.2 0.2",  # wholly outside: clips to nothing, dropped
            "1 0.5 0.5 0.2 0.2",
        ],
    )
    (root / "labels" / "train" / "train1.txt").unlink()  # an image without labels
    _label(root / "labels" / "train" / "ghost.txt", ["0 0.5 0.5 0.1 0.1"])  # no image
    data = read_yolo(root)
    r = data.report
    assert r["boxes_clipped"] == 1 and r["boxes_dropped_zero_area"] == 2
    assert r["images_without_labels"] == 1 and r["labels_without_images"] == 1
    frames = {Path(f.image_path).stem: f for f in data.splits["train"]}
    np.testing.assert_allclose(frames["train0"].boxes[0], [170, 40, 200, 60], atol=1e-4)
    assert len(frames["train0"].boxes) == 2 and len(frames["train1"].boxes) == 0
    assert any("labels without images: 1" in n for n in data.notes)


def test_unknown_class_id_names_file_and_line(tmp_path):
    root = _images_first(tmp_path)
    _label(root / "labels" / "val" / "val1.txt", ["0 0.5 0.5 0.1 0.1", "7 0.5 0.5 0.1 0.1"])
    with pytest.raises(UserError, match=r"val1\.txt line 2: unknown class id 7; the set has 2"):
        read_yolo(root)


def test_malformed_line_names_file_and_line(tmp_path):
    root = _images_first(tmp_path)
    _label(root / "labels" / "val" / "val0.txt", ["0 0.5 0.5"])
    with pytest.raises(UserError, match=r"val0\.txt line 1: expected 5 fields"):
        read_yolo(root)


def test_yaml_naming_a_missing_folder(tmp_path):
    root = _images_first(tmp_path)
    (root / "data.yaml").write_text("train: images/train\nval: images/nowhere\nnames: [a, b]\n")
    with pytest.raises(UserError, match=r"val: images/nowhere does not exist"):
        read_yolo(root)


def test_mask_of_another_size_names_both(tmp_path):
    root = _images_first(tmp_path)
    _mask(root / "masks" / "train" / "train1.png", w=100, h=50)
    with pytest.raises(
        UserError, match=r"mask .*train1\.png is 100x50 but its image .*train1\.png is 200x100"
    ):
        read_yolo(root)


def test_missing_and_orphan_masks_are_counted(tmp_path):
    root = _images_first(tmp_path)
    (root / "masks" / "val" / "val0.png").unlink()
    _mask(root / "masks" / "val" / "stray.png")
    data = read_yolo(root)
    assert data.has_masks
    assert data.report["images_without_masks"] == 1 and data.report["masks_without_images"] == 1


def test_corrupt_image_skipped_or_refused(tmp_path):
    root = _images_first(tmp_path)
    good = (root / "images" / "train" / "train1.png").read_bytes()
    (root / "images" / "train" / "train1.png").write_bytes(good[: len(good) // 2])
    data = read_yolo(root)  # on_corrupt="skip", as shared/data's default
    assert data.report["corrupt_images_skipped"] == 1 and len(data.splits["train"]) == 1
    with pytest.raises(UserError, match=r"1 image file\(s\) .* corrupt .*train1\.png"):
        read_yolo(root, on_corrupt="fail")


def test_no_yaml_no_classes_txt(tmp_path):
    _image(tmp_path / "images" / "a.png")
    with pytest.raises(UserError, match="neither a data.yaml nor a classes.txt"):
        read_yolo(tmp_path)


def test_empty_split_folder_is_left_out(tmp_path):
    root = _images_first(tmp_path)
    (root / "images" / "test").mkdir()
    (root / "data.yaml").write_text(
        "train: images/train\nval: images/val\ntest: images/test\nnames: [a, b]\n"
    )
    assert set(read_yolo(root).splits) == {"train", "validation"}
