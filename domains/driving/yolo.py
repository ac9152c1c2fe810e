"""`yolo:PATH`: a detection set in the Ultralytics YOLO layout, optionally with masks.

PATH is a `data.yaml` (or a folder holding one): `names` (a list, or a dict of ids),
`train` / `val` / `test` (folders of images, lists of them or .txt lists of image
files), resolved against its `path:` key or else its own folder; `mask_names` if the
set has masks. Or a folder with `classes.txt` (one name per line) and `images/`
(flat, or with train/ val/ test/ inside) or `train/images`, `val/images`, ...

Labels sit where Ultralytics looks for them: the image path with its last `images`
folder replaced by `labels` and the suffix by `.txt` (so both `images/train` +
`labels/train` and `train/images` + `train/labels` work); one `cls cx cy w h` line per
object, normalised to the image's size (polygon lines are read as their bounding box).
Masks: `masks` in place of `images`, one PNG per image of the same stem whose pixel
values are class ids. A set without any `masks/` folder is detection only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from domains.driving.boxes import clip_boxes, yolo_to_xyxy
from domains.driving.detection_set import (
    DEFAULT_MASK_NAMES,
    IMAGE_SUFFIXES,
    DetectionSet,
    Frame,
    inspect_image,
    inspect_images,
    log_notes,
)
from shared.errors import UserError

log = logging.getLogger(__name__)

# data.yaml keys -> the split names every domain uses.
_SPLIT_KEYS = (("train", "train"), ("val", "validation"), ("test", "test"))
_REPORT_KEYS = (
    "images",
    "boxes",
    "boxes_clipped",
    "boxes_dropped_zero_area",
    "images_without_labels",
    "labels_without_images",
    "corrupt_images_skipped",
    "images_without_masks",
    "masks_without_images",
)


def read_yolo(path: str | os.PathLike, *, on_corrupt: str = "skip") -> DetectionSet:
    """The YOLO set at `path` (the part of `yolo:PATH` after the colon)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"yolo: {root} does not exist")
    if root.is_file():
        if root.suffix.lower() not in (".yaml", ".yml"):
            raise UserError(f"yolo: {root} is a file but not a data.yaml")
        class_names, mask_names, split_images = _from_yaml(root)
    elif (yaml_path := _find_yaml(root)) is not None:
        class_names, mask_names, split_images = _from_yaml(yaml_path)
    elif (root / "classes.txt").is_file():
        class_names, mask_names, split_images = _from_classes_txt(root)
    else:
        raise UserError(
            f"yolo: {root} has neither a data.yaml nor a classes.txt; the Ultralytics layout "
            "is data.yaml (names, train, val) with images/ and labels/ folders"
        )
    return _read_frames(str(root), class_names, mask_names, split_images, on_corrupt)


def _find_yaml(root: Path) -> Path | None:
    for name in ("data.yaml", "data.yml"):
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
    return found[0] if len(found) == 1 else None


def _names(value: Any, key: str, where: Path) -> list[str]:
    """`names` (or `mask_names`) as a list: a list, or a dict {0: name, 1: name, ...}."""
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    if isinstance(value, dict) and value:
        try:
            by_id = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise UserError(f"{where}: {key} keys must be class ids 0, 1, ...") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise UserError(
                f"{where}: {key} ids must run 0..{len(by_id) - 1} without gaps; got {sorted(by_id)}"
            )
        return [by_id[i] for i in range(len(by_id))]
    raise UserError(f"{where}: {key} must be a non-empty list of names or a dict id: name")


def _from_yaml(yaml_path: Path) -> tuple[list[str], list[str], dict[str, list[str]]]:
    try:
        data = yaml.safe_load(yaml_path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"cannot read {yaml_path}: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{yaml_path} is not a YAML mapping (names:, train:, val:)")
    if "names" not in data:
        raise UserError(f"{yaml_path} has no names: (the class names)")
    class_names = _names(data["names"], "names", yaml_path)
    if "nc" in data and data["nc"] != len(class_names):
        raise UserError(f"{yaml_path}: nc is {data['nc']} but names lists {len(class_names)}")
    mask_names = (
        _names(data["mask_names"], "mask_names", yaml_path)
        if data.get("mask_names") is not None
        else list(DEFAULT_MASK_NAMES)
    )
    base = yaml_path.parent
    if data.get("path"):
        given = Path(str(data["path"])).expanduser()
        base = given if given.is_absolute() else base / given
        if not base.is_dir():
            raise UserError(f"{yaml_path}: path: {data['path']} does not exist ({base})")
    split_images = {}
    for key, split in _SPLIT_KEYS:
        entries = data.get(key)
        if not entries:
            continue
        images: list[str] = []
        for entry in entries if isinstance(entries, list) else [entries]:
            images += _images_of(base, str(entry), key, yaml_path)
        if images:  # an empty split folder (a tiny simulated set's test/) is left out
            split_images[split] = images
    if not split_images:
        raise UserError(f"{yaml_path} names no train:, val: or test: folder holding images")
    return class_names, mask_names, split_images


def _images_of(base: Path, entry: str, key: str, yaml_path: Path) -> list[str]:
    """The images an entry of data.yaml names: a folder (searched recursively, as
    Ultralytics does), a .txt list of image files, or one image file."""
    target = Path(entry).expanduser()
    target = target if target.is_absolute() else base / target
    if not target.exists():
        raise UserError(f"{yaml_path}: {key}: {entry} does not exist ({target})")
    if target.is_dir():
        images = sorted(
            str(p)
            for p in target.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
    elif target.suffix.lower() == ".txt":
        lines = [ln.strip() for ln in target.read_text().splitlines() if ln.strip()]
        images = [str(p if p.is_absolute() else target.parent / p) for p in map(Path, lines)]
        missing = [p for p in images if not os.path.isfile(p)]
        if missing:
            raise UserError(
                f"{target} lists {len(missing)} image file(s) that do not exist; first: "
                f"{missing[0]}"
            )
    else:
        images = [str(target)]
    if not images:
        log.warning("%s: %s: %s holds no images (%s)", yaml_path, key, entry, target)
    return images


def _from_classes_txt(root: Path) -> tuple[list[str], list[str], dict[str, list[str]]]:
    names = [ln.strip() for ln in (root / "classes.txt").read_text().splitlines() if ln.strip()]
    if not names:
        raise UserError(f"{root / 'classes.txt'} is empty; it should list one class per line")
    folders: dict[str, Path] = {}
    for key, split in _SPLIT_KEYS:
        for candidate in (root / key / "images", root / "images" / key):
            if candidate.is_dir():
                folders[split] = candidate
    if not folders:
        if not (root / "images").is_dir():
            raise UserError(f"yolo: {root} has classes.txt but no images/ folder")
        folders = {"train": root / "images"}
    split_images = {
        split: sorted(
            str(p)
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        for split, folder in folders.items()
    }
    if not any(split_images.values()):
        raise UserError(f"yolo: no images under {', '.join(map(str, folders.values()))}")
    return names, [*DEFAULT_MASK_NAMES], split_images


def partner_path(image_path: str, folder: str, suffix: str) -> str:
    """Where Ultralytics looks for an image's label: its last `images` folder replaced by
    `folder`, the suffix by `suffix`; beside the image when there is no `images` folder."""
    parts = list(Path(image_path).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = folder
            break
    return str(Path(*parts).with_suffix(suffix))


def _read_frames(
    root: str,
    class_names: list[str],
    mask_names: list[str],
    split_images: dict[str, list[str]],
    on_corrupt: str,
) -> DetectionSet:
    report = dict.fromkeys(_REPORT_KEYS, 0)
    all_paths = [p for paths in split_images.values() for p in paths]
    if not all_paths:
        raise UserError(f"yolo: no images found in {root}")
    infos, report["corrupt_images_skipped"] = inspect_images(all_paths, root, on_corrupt)
    info_of = dict(zip(all_paths, infos, strict=True))

    mask_dirs = {os.path.dirname(partner_path(p, "masks", ".png")) for p in all_paths}
    mask_dirs = {d for d in mask_dirs if os.path.isdir(d) and "masks" in Path(d).parts}
    has_masks = bool(mask_dirs)

    splits: dict[str, list[Frame]] = {}
    for split, paths in split_images.items():
        frames = []
        for image_path in paths:
            info = info_of[image_path]
            if info.problem:
                continue
            label_path = partner_path(image_path, "labels", ".txt")
            if os.path.isfile(label_path):
                boxes, classes = _read_label_file(label_path, class_names, info, report)
            else:
                report["images_without_labels"] += 1
                boxes, classes = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
            mask_path = None
            if has_masks:
                candidate = partner_path(image_path, "masks", ".png")
                if os.path.isfile(candidate):
                    _check_mask(candidate, image_path, info.height, info.width)
                    mask_path = candidate
                else:
                    report["images_without_masks"] += 1
            frames.append(Frame(image_path, info.height, info.width, boxes, classes, mask_path))
        splits[split] = frames
    report["images"] = sum(len(f) for f in splits.values())
    report["boxes"] = sum(len(fr.boxes) for f in splits.values() for fr in f)

    label_stems = {str(Path(partner_path(p, "labels", ".txt")).with_suffix("")) for p in all_paths}
    label_dirs = {os.path.dirname(s) for s in label_stems}
    report["labels_without_images"] = _orphans(label_dirs, ".txt", label_stems)
    mask_stems = {str(Path(partner_path(p, "masks", ".png")).with_suffix("")) for p in all_paths}
    report["masks_without_images"] = _orphans(mask_dirs, ".png", mask_stems)

    notes = [
        f"read {report['images']} images with {report['boxes']} boxes in "
        f"{', '.join(f'{s} {len(f)}' for s, f in splits.items())} from {root}"
    ]
    if not has_masks:
        notes.append(f"no masks/ folder beside images/ in {root}: detection only")
    log_notes(notes, report, ("images", "boxes"))
    return DetectionSet(
        source=f"yolo:{root}",
        splits=splits,
        class_names=class_names,
        mask_names=mask_names,
        has_masks=has_masks,
        report=report,
        notes=notes,
    )


def _orphans(folders: set[str], suffix: str, expected_stems: set[str]) -> int:
    """Files with `suffix` in `folders` whose stem no image claims."""
    count = 0
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if not name.endswith(suffix) or name == "classes.txt" or name.startswith("."):
                continue
            if str(Path(folder, name).with_suffix("")) not in expected_stems:
                count += 1
    return count


def _read_label_file(
    label_path: str, class_names: list[str], info: Any, report: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel boxes and class ids of one label file: clipped to the image (counted),
    zero-area boxes dropped (counted); an unknown class id or a malformed line is an
    error naming the file and line."""
    rows, classes = [], []
    try:
        text = Path(label_path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read label file {label_path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise UserError(
                f"{label_path} line {lineno}: expected numbers 'cls cx cy w h', got {line!r}"
            ) from None
        cls = values[0]
        if len(values) == 5:
            rows.append(values[1:])
        elif len(values) >= 7 and len(values) % 2 == 1:  # a polygon: its bounding box
            xs, ys = values[1::2], values[2::2]
            x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
            rows.append([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        else:
            raise UserError(
                f"{label_path} line {lineno}: expected 5 fields 'cls cx cy w h', got {len(values)}"
            )
        if cls != int(cls) or not 0 <= cls < len(class_names):
            raise UserError(
                f"{label_path} line {lineno}: unknown class id {fields[0]}; the set has "
                f"{len(class_names)} classes, ids 0..{len(class_names) - 1} "
                f"({', '.join(class_names)})"
            )
        classes.append(int(cls))
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    boxes = yolo_to_xyxy(np.array(rows), info.height, info.width)
    boxes, changed = clip_boxes(boxes, info.height, info.width)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    report["boxes_clipped"] += int(np.sum(changed & keep))
    report["boxes_dropped_zero_area"] += int(np.sum(~keep))
    return boxes[keep], np.array(classes, np.int32)[keep]


def _check_mask(mask_path: str, image_path: str, height: int, width: int) -> None:
    info = inspect_image(mask_path)
    if info.problem:
        raise UserError(f"mask {mask_path} is unreadable ({info.problem})")
    if (info.height, info.width) != (height, width):
        raise UserError(
            f"mask {mask_path} is {info.width}x{info.height} but its image {image_path} is "
            f"{width}x{height}; a mask must match its image's size"
        )
