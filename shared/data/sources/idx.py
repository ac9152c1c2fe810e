"""`idx:PATH`: MNIST-style IDX files, a folder of train/t10k pairs or one images file."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np

from shared.data.sources.arrays import array_source
from shared.data.sources.base import SOURCES, Loaded, LoadOptions
from shared.errors import UserError

log = logging.getLogger(__name__)

# (split, file prefix) in a folder: MNIST ships its test split as "t10k".
_FOLDER_PAIRS = (("train", "train"), ("test", "t10k"))


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) of unsigned bytes into an array.

    Layout: two zero bytes, a dtype code (0x08 = ubyte), the number of dims, then each dim
    as a big-endian uint32, then the data.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # BadGzipFile is an OSError; a cut-off gzip is EOFError
        raise UserError(f"cannot read IDX file {path}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code != 0x08:
        raise UserError(f"{path}: IDX data type 0x{code:02x} is not supported (only 0x08, ubyte)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected, found = int(np.prod(dims)), len(raw) - header
    if found != expected:
        raise UserError(
            f"{path}: header promises {expected} bytes of data for shape {dims} but the file "
            f"holds {found} (truncated or damaged)"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


@SOURCES.register("idx")
def _load_idx(rest: str, opts: LoadOptions) -> Loaded:
    """MNIST-format IDX files: a directory of train/t10k files, or one images file."""
    path = Path(rest).expanduser()
    if not path.exists():
        raise UserError(f"IDX path {path} does not exist")
    notes = []
    if path.is_dir():
        parts = _folder_pairs(path)
        if "train" not in parts:
            # Only MNIST's test files: they become the pool all three splits are cut from.
            parts["train"] = parts.pop("test")
            notes.append(
                f"{path} holds only the t10k (test) files; train, validation and test are all "
                f"cut from them by the seeded splitter"
            )
            log.warning("%s", notes[-1])
    else:
        parts = {"train": _idx_pair(path, _labels_path(path))}
    loaded = array_source(parts, opts, str(path))
    loaded.notes.extend(notes)
    return loaded


def _folder_pairs(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The complete images+labels pairs in a folder, by split; a lone half is an error."""
    parts = {}
    for split, prefix in _FOLDER_PAIRS:
        images = _idx_path(path, f"{prefix}-images-idx3-ubyte")
        labels = _idx_path(path, f"{prefix}-labels-idx1-ubyte")
        if images and labels:
            parts[split] = _idx_pair(images, labels)
        elif images or labels:
            raise UserError(f"{path}: found {(images or labels).name} without its partner")
    if not parts:
        raise UserError(
            f"{path} holds no train-images-idx3-ubyte + train-labels-idx1-ubyte "
            f"(or t10k-images-idx3-ubyte + t10k-labels-idx1-ubyte; optionally .gz)"
        )
    return parts


def _labels_path(images_path: Path) -> Path:
    """The labels file next to a single images file (images-idx3 -> labels-idx1)."""
    name = images_path.name
    for images_part, labels_part in (
        ("images-idx3", "labels-idx1"),
        ("images.idx3", "labels.idx1"),
    ):
        if images_part in name:
            labels_path = images_path.with_name(name.replace(images_part, labels_part))
            break
    else:
        raise UserError(f"{images_path}: an IDX images file name must contain 'images-idx3'")
    if not labels_path.is_file():
        raise UserError(f"labels file {labels_path} for {images_path} does not exist")
    return labels_path


def _idx_path(directory: Path, stem: str) -> Path | None:
    """`stem` (e.g. train-images-idx3-ubyte) in `directory`, plain or .gz, '-' or '.' before idx."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise UserError(f"{images_path}: images must have 3 dims (N, H, W); got {images.shape}")
    if labels.ndim != 1:
        raise UserError(f"{labels_path}: labels must have 1 dim (N,); got {labels.shape}")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    return images, labels
