"""`folder:PATH`: one sub-folder per class, or train/ val/ test/ folders each holding those.

Files are scanned once, in threads: checked (corrupt ones skipped or refused), measured, and
hashed so exact duplicates can be found across splits.
"""

from __future__ import annotations

import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from PIL import Image

from shared.data.folder_layout import list_folder
from shared.data.sources.base import SOURCES, Loaded, LoadOptions, Split, content_key
from shared.errors import UserError

log = logging.getLogger(__name__)

# Files up to this size are read whole: fully decoded (verify() alone misses truncated JPEGs)
# and hashed whole. Larger ones are hashed by size plus their first and last HASH_EDGE_BYTES.
FULL_CHECK_BYTES = 1 << 20
HASH_EDGE_BYTES = 1 << 16

# PIL modes without colour; anything else (RGB, RGBA, P, CMYK, ...) counts as colour.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@SOURCES.register("folder")
def _load_folder(rest: str, opts: LoadOptions) -> Loaded:
    """One sub-folder per class, or train/ + val|validation/ + test/ each holding those."""
    root, layout, listed = list_folder(rest)
    class_names = sorted({name for files in listed.values() for name in files})

    entries = [
        (split, str(p), class_names.index(name))
        for split, files in listed.items()
        for name in sorted(files)
        for p in files[name]
    ]
    workers = min(16, 2 * (os.cpu_count() or 1))  # scanning is mostly file I/O
    with ThreadPoolExecutor(workers) as pool:
        scans = list(pool.map(_inspect_image, [p for _, p, _ in entries]))
    corrupt = [
        (p, scan.problem) for (_, p, _), scan in zip(entries, scans, strict=True) if scan.problem
    ]
    if corrupt:
        if opts.on_corrupt == "fail" or len(corrupt) == len(entries):
            what = "all" if len(corrupt) == len(entries) else str(len(corrupt))
            raise UserError(
                f"{what} image file(s) in {root} are corrupt or unreadable; first: "
                f"{corrupt[0][0]} ({corrupt[0][1]})"
                + ("; set data.on_corrupt=skip to skip them" if what != "all" else "")
            )
        log.warning(
            "skipping %d corrupt or unreadable image file(s) in %s; first: %s (%s)",
            len(corrupt),
            root,
            corrupt[0][0],
            corrupt[0][1],
        )
    good = [(e, scan) for e, scan in zip(entries, scans, strict=True) if scan.problem is None]

    if opts.color_mode == "auto":
        channels = 3 if any(scan.mode not in _GRAY_MODES for _, scan in good) else 1
    else:
        channels = 3 if opts.color_mode == "rgb" else 1
    sizes = {scan.size for _, scan in good}
    if opts.image_size is None and len(sizes) > 1:
        a, b = sorted(sizes)[:2]
        raise UserError(
            f"images in {root} have different sizes (e.g. {a[0]}x{a[1]} and {b[0]}x{b[1]}); "
            f"set data.image_size to resize them"
        )
    size = opts.image_size or next(iter(sizes))
    shape = (int(size[0]), int(size[1]), channels)
    resize = opts.image_size is not None and sizes != {tuple(opts.image_size)}
    splits, keys = {}, {}
    for split in layout:
        rows = [(p, label, scan.key) for (s, p, label), scan in good if s == split]
        splits[split] = Split(
            labels=np.array([label for _, label, _ in rows], np.int32),
            image_shape=shape,
            paths=np.array([p for p, _, _ in rows], dtype=str),
            resize=resize,
        )
        keys[split] = np.array([key for _, _, key in rows], dtype=object)
    return Loaded(
        class_names=class_names,
        image_shape=shape,
        splits=splits,
        corrupt=[p for p, _ in corrupt],
        keys=keys,
    )


class _Scan(NamedTuple):
    problem: str | None  # None for a usable image
    size: tuple[int, int] | None = None  # (height, width)
    mode: str | None = None  # PIL mode
    key: bytes | None = None  # content hash (see FULL_CHECK_BYTES)


def _inspect_image(path: str) -> _Scan:
    """Check, measure and hash one image file, reading it once where it is small."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= FULL_CHECK_BYTES:
                data = f.read()
                key = content_key(data)
            else:
                head = f.read(HASH_EDGE_BYTES)
                f.seek(-HASH_EDGE_BYTES, os.SEEK_END)
                key = content_key(size.to_bytes(8, "little") + head + f.read())
                data = None
        stream = (lambda: io.BytesIO(data)) if data is not None else (lambda: path)
        with Image.open(stream()) as im:
            im.verify()  # checks structure (and PNG checksums) without decoding pixels
        with Image.open(stream()) as im:  # verify() leaves the image unusable: reopen
            shape, mode, fmt = (im.height, im.width), im.mode, im.format
            if fmt not in ("PNG", "JPEG", "BMP", "GIF"):
                return _Scan(f"{fmt} data, which TensorFlow cannot decode")
            if fmt == "BMP" and mode in ("1", "P"):
                return _Scan("1-bit or palette BMP, which TensorFlow decodes wrongly")
            if data is not None:
                im.load()  # full decode: the only cheap way to catch truncated pixel data
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return _Scan(f"{type(e).__name__}: {e}")
    if min(shape) < 1:
        return _Scan("empty image")
    return _Scan(None, shape, mode, key)
