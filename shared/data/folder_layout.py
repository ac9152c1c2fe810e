"""The layout of a `folder:` source: class sub-folders (and shipped split folders).

Listing only, no image is opened and no TensorFlow is imported, so the vision domain
checks a folder before TensorFlow starts and the loader (`sources/folder.py`) reads the
same listing afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shared.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def list_folder(rest: str) -> tuple[Path, dict[str, Path], dict[str, dict[str, list[Path]]]]:
    """(root, split -> folder, split -> class -> image files), with at least two classes."""
    root = Path(rest).expanduser()
    if not root.exists():
        raise UserError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UserError(
            f"{root} is a file; folder: expects a directory with one sub-folder per class"
        )
    layout = folder_layout(root)
    listed = {split: list_class_files(directory) for split, directory in layout.items()}
    class_names = sorted({name for files in listed.values() for name in files})
    if not class_names:
        raise UserError(
            f"empty folder: {root} has no class sub-folders holding "
            f"{'/'.join(IMAGE_EXTENSIONS)} images"
        )
    if len(class_names) < 2:
        raise UserError(
            f"{root} has a single class ({class_names[0]}); need at least 2 class sub-folders"
        )
    return root, layout, listed


def folder_layout(root: Path) -> dict[str, Path]:
    """{"train": root}, or the shipped split folders when root holds train/ and val|test/."""
    subdirs = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if "val" in subdirs and "validation" in subdirs:
        raise UserError(f"{root} has both val/ and validation/; keep one")
    layout = {
        split: subdirs[name]
        for split, name in (
            ("train", "train"),
            ("validation", "val"),
            ("validation", "validation"),
            ("test", "test"),
        )
        if name in subdirs and any(p.is_dir() for p in subdirs[name].iterdir())
    }
    if "train" not in layout or len(layout) == 1:
        return {"train": root}
    ignored = sorted(set(subdirs) - {p.name for p in layout.values()})
    if ignored:
        log.warning("using shipped splits in %s; ignoring folders %s", root, ", ".join(ignored))
    return layout


def list_class_files(directory: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files, for each sub-folder of `directory` holding images."""
    classes = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in sub.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if files:
            classes[sub.name] = files
        else:
            log.warning("ignoring %s: it holds no %s images", sub, "/".join(IMAGE_EXTENSIONS))
    return classes
