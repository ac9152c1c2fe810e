"""`kitti:PATH`: the KITTI object detection layout, read into a `DetectionSet`.

PATH is the KITTI object root (holding `training/image_2` and `training/label_2`) or its
`training/` folder. Each label line has 15 fields (16 in result files, the last a score):
type, truncated, occluded, alpha, left, top, right, bottom (pixels), h, w, l, x, y, z,
rotation_y. A class map turns KITTI's types into this set's classes; types mapped to
`IGNORE` (DontCare, and by default Tram and Misc) become regions whose detections count
neither for nor against (as the devkit treats DontCare); types mapped to None are
dropped. KITTI ships no validation or test labels, so every frame is in "train" and the
domain splits them with the shared splitter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from domains.driving.boxes import clip_boxes
from domains.driving.detection_set import (
    DetectionSet,
    Frame,
    inspect_images,
    list_images,
    log_notes,
)
from shared.errors import UserError

IGNORE = "ignore"
DEFAULT_CLASS_MAP: dict[str, str | None] = {
    "Car": "vehicle",
    "Van": "vehicle",
    "Truck": "vehicle",
    "Pedestrian": "pedestrian",
    "Person_sitting": "pedestrian",
    "Cyclist": "cyclist",
    "Tram": IGNORE,
    "Misc": IGNORE,
    "DontCare": IGNORE,
}
_REPORT_KEYS = (
    "images",
    "boxes",
    "ignore_regions",
    "boxes_clipped",
    "boxes_dropped_zero_area",
    "objects_dropped_by_class_map",
    "images_without_labels",
    "labels_without_images",
    "corrupt_images_skipped",
)


def kitti_folders(path: str | os.PathLike) -> tuple[Path, Path]:
    """(image_2, label_2) under a KITTI object root or its training/ folder."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"kitti: {root} is not a folder")
    for base in (root / "training", root):
        if (base / "image_2").is_dir():
            if not (base / "label_2").is_dir():
                raise UserError(
                    f"kitti: {base} has image_2/ but no label_2/ (KITTI's testing/ folder "
                    "ships no labels; point at training/)"
                )
            return base / "image_2", base / "label_2"
    raise UserError(
        f"kitti: {root} is neither a KITTI object root (training/image_2, training/label_2) "
        "nor its training/ folder (image_2, label_2)"
    )


def class_names_of(class_map: Mapping[str, str | None]) -> list[str]:
    """The set's classes in the order they first appear in the map."""
    names: list[str] = []
    for target in class_map.values():
        if target is not None and target != IGNORE and target not in names:
            names.append(target)
    if not names:
        raise UserError("the KITTI class map maps no type to a class")
    return names


def read_kitti(
    path: str | os.PathLike,
    *,
    class_map: Mapping[str, str | None] | None = None,
    on_corrupt: str = "skip",
) -> DetectionSet:
    """Every labelled frame under `path`, in split "train"."""
    class_map = dict(DEFAULT_CLASS_MAP if class_map is None else class_map)
    class_names = class_names_of(class_map)
    image_dir, label_dir = kitti_folders(path)
    report = dict.fromkeys(_REPORT_KEYS, 0)
    images = list_images(image_dir)
    if not images:
        raise UserError(f"kitti: no images in {image_dir}")
    infos, report["corrupt_images_skipped"] = inspect_images(images, str(image_dir), on_corrupt)
    frames = []
    for image_path, info in zip(images, infos, strict=True):
        if info.problem:
            continue
        label_path = label_dir / (Path(image_path).stem + ".txt")
        if not label_path.is_file():
            report["images_without_labels"] += 1
            frames.append(Frame(image_path, info.height, info.width))
            continue
        frames.append(_read_label(label_path, image_path, info, class_map, class_names, report))
    stems = {Path(p).stem for p in images}
    report["labels_without_images"] = sum(
        1 for p in label_dir.glob("*.txt") if p.stem not in stems and not p.name.startswith(".")
    )
    report["images"] = len(frames)
    report["boxes"] = sum(len(f.boxes) for f in frames)
    report["ignore_regions"] = sum(len(f.ignore_boxes) for f in frames)
    notes = [
        f"read {len(frames)} KITTI frames with {report['boxes']} boxes and "
        f"{report['ignore_regions']} ignore regions from {image_dir.parent}; no masks: "
        "detection only"
    ]
    log_notes(notes, report, ("images", "boxes", "ignore_regions"))
    return DetectionSet(
        source=f"kitti:{Path(path).expanduser()}",
        splits={"train": frames},
        class_names=class_names,
        has_masks=False,
        report=report,
        notes=notes,
    )


def _read_label(label_path, image_path, info, class_map, class_names, report) -> Frame:
    boxes, classes, truncation, occlusion, ignore = [], [], [], [], []
    try:
        text = label_path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read label file {label_path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (15, 16):
            raise UserError(
                f"{label_path} line {lineno}: a KITTI label line has 15 fields (type, "
                f"truncated, occluded, alpha, left, top, right, bottom, h, w, l, x, y, z, "
                f"rotation_y); got {len(fields)}"
            )
        kind = fields[0]
        if kind not in class_map:
            raise UserError(
                f"{label_path} line {lineno}: type {kind!r} is not in the class map "
                f"({', '.join(class_map)})"
            )
        try:
            trunc, occ = float(fields[1]), int(float(fields[2]))
            box = [float(v) for v in fields[4:8]]
        except ValueError:
            raise UserError(f"{label_path} line {lineno}: expected numbers in {line!r}") from None
        target = class_map[kind]
        if target is None:
            report["objects_dropped_by_class_map"] += 1
        elif target == IGNORE:
            ignore.append(box)
        else:
            boxes.append(box)
            classes.append(class_names.index(target))
            truncation.append(trunc)
            occlusion.append(occ)
    boxes_arr, changed = clip_boxes(np.array(boxes, np.float32), info.height, info.width)
    keep = (boxes_arr[:, 2] > boxes_arr[:, 0]) & (boxes_arr[:, 3] > boxes_arr[:, 1])
    report["boxes_clipped"] += int(np.sum(changed & keep))
    report["boxes_dropped_zero_area"] += int(np.sum(~keep))
    ignore_arr, _ = clip_boxes(np.array(ignore, np.float32), info.height, info.width)
    return Frame(
        image_path,
        info.height,
        info.width,
        boxes_arr[keep],
        np.array(classes, np.int32)[keep],
        truncation=np.array(truncation, np.float32)[keep],
        occlusion=np.array(occlusion, np.int32)[keep],
        ignore_boxes=ignore_arr,
    )
