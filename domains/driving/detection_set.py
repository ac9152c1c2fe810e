"""What the driving readers return: frames with pixel boxes, grouped into splits.

A `Frame` is one image with its boxes (pixels, xyxy), class ids and, where the source
has them, a mask path, KITTI's truncation and occlusion, and regions to ignore (KITTI's
DontCare). Images are only inspected here (header and structure), never decoded, so a
reader stays fast on thousands of frames; pixels are decoded later by the input pipeline.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image

from shared.data.splits import split_sizes
from shared.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_MASK_NAMES = ("background", "road", "lane_marking")
# Formats TensorFlow's decode_image reads (as shared/data/sources/folder.py checks).
_DECODABLE = ("PNG", "JPEG", "BMP", "GIF")


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


@dataclass(eq=False)
class Frame:
    """One image and its objects. Boxes are float32 pixels (x1, y1, x2, y2)."""

    image_path: str
    height: int
    width: int
    boxes: np.ndarray = field(default_factory=_empty_boxes)
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    mask_path: str | None = None
    # KITTI's per-object extras; zeros where a source has none (YOLO).
    truncation: np.ndarray | None = None
    occlusion: np.ndarray | None = None
    # Regions whose detections count neither for nor against (KITTI DontCare).
    ignore_boxes: np.ndarray = field(default_factory=_empty_boxes)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.classes = np.asarray(self.classes, np.int32).reshape(-1)
        n = len(self.boxes)
        if len(self.classes) != n:
            raise ValueError(f"{len(self.classes)} class ids for {n} boxes")
        self.truncation = (
            np.zeros(n, np.float32)
            if self.truncation is None
            else np.asarray(self.truncation, np.float32).reshape(-1)
        )
        self.occlusion = (
            np.zeros(n, np.int32)
            if self.occlusion is None
            else np.asarray(self.occlusion, np.int32).reshape(-1)
        )
        self.ignore_boxes = np.asarray(self.ignore_boxes, np.float32).reshape(-1, 4)


@dataclass(eq=False, repr=False)
class DetectionSet:
    """A detection (and optionally segmentation) data set, split as its source ships it.

    `splits` maps "train" / "validation" / "test" to frames; a source without splits of
    its own (KITTI, a flat YOLO folder) has "train" only, for the shared splitter.
    `report` counts what was repaired or left out (clipped and dropped boxes, files
    without partners, corrupt images); `notes` are sentences saying how it was read.
    """

    source: str
    splits: dict[str, list[Frame]]
    class_names: list[str]
    mask_names: list[str] = field(default_factory=lambda: list(DEFAULT_MASK_NAMES))
    has_masks: bool = False
    report: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # How the missing splits were cut (seed, duplicates), set by `data.load`'s callers.
    split_info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def frames(self) -> list[Frame]:
        """Every frame of every split, in split order."""
        return [frame for frames in self.splits.values() for frame in frames]

    def summary(self) -> str:
        """Frames, boxes per class and masks in each split, and how the splits were made."""
        how = self.split_info.get("method")
        lines = [
            f"{self.source}: classes {', '.join(self.class_names)}; "
            + (f"masks {', '.join(self.mask_names)}" if self.has_masks else "no masks")
            + (f"; splits {how}" if how else "")
            + (f", seed {self.split_info['seed']}" if "seed" in self.split_info else "")
        ]
        for name, frames in self.splits.items():
            classes = np.concatenate([f.classes for f in frames]) if frames else np.zeros(0, int)
            counts = np.bincount(classes, minlength=self.num_classes)
            boxes = ", ".join(f"{c} {n}" for c, n in zip(self.class_names, counts, strict=True))
            lines.append(f"  {name:<10} {len(frames):>6,} frames, boxes: {boxes}")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return f"DetectionSet({self.source!r}, classes {self.class_names}, frames: {sizes})"


class ImageInfo(NamedTuple):
    problem: str | None  # None for a usable image
    height: int = 0
    width: int = 0


def inspect_image(path: str) -> ImageInfo:
    """Size and soundness of one image from its header and structure, without decoding
    its pixels (PIL's verify() checks chunk structure and PNG checksums)."""
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:  # verify() leaves the image unusable: reopen
            width, height, fmt = im.width, im.height, im.format
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return ImageInfo(f"{type(e).__name__}: {e}")
    if fmt not in _DECODABLE:
        return ImageInfo(f"{fmt} data, which TensorFlow cannot decode")
    if min(width, height) < 1:
        return ImageInfo("empty image")
    return ImageInfo(None, height, width)


def inspect_images(paths: Sequence[str], root: str, on_corrupt: str) -> tuple[list[ImageInfo], int]:
    """`inspect_image` for every path, in threads, with shared/data's corrupt-file rule:
    `on_corrupt="skip"` logs and leaves them out, "fail" refuses them; a set whose
    images are all corrupt is refused either way. Returns the infos and the number bad."""
    if on_corrupt not in ("skip", "fail"):
        raise UserError(f"on_corrupt must be one of skip, fail; got {on_corrupt!r}")
    workers = min(16, 2 * (os.cpu_count() or 1))  # mostly file I/O
    with ThreadPoolExecutor(workers) as pool:
        infos = list(pool.map(inspect_image, paths))
    bad = [(p, info.problem) for p, info in zip(paths, infos, strict=True) if info.problem]
    if bad:
        if on_corrupt == "fail" or len(bad) == len(paths):
            what = "all" if len(bad) == len(paths) else str(len(bad))
            raise UserError(
                f"{what} image file(s) in {root} are corrupt or unreadable; first: "
                f"{bad[0][0]} ({bad[0][1]})"
                + ("; set data.on_corrupt=skip to skip them" if what != "all" else "")
            )
        log.warning(
            "skipping %d corrupt or unreadable image file(s) in %s; first: %s (%s)",
            len(bad),
            root,
            bad[0][0],
            bad[0][1],
        )
    return infos, len(bad)


def list_images(folder: os.PathLike | str) -> list[str]:
    """Image files directly in `folder`, sorted, hidden files left out."""
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_SUFFIXES)
        and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    )


def log_notes(notes: list[str], report: dict[str, int], counts: Sequence[str]) -> None:
    """Add the report's non-zero problem counts (every key but the plain `counts`) to
    `notes`, and log each note: what a reader says about the set it read."""
    problems = {k: v for k, v in report.items() if v and k not in counts}
    if problems:
        notes.append(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in problems.items()))
    for note in notes:
        log.info("%s", note)
