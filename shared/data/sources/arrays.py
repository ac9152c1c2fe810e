"""The shared tail of the in-memory sources (builtin, npz, idx): check, convert, wrap."""

from __future__ import annotations

import numpy as np

from shared.data.sources.base import Loaded, LoadOptions, Split
from shared.data.sources.pixels import resize_uint8
from shared.errors import UserError


def to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """Images of any numeric dtype as uint8 0..255; floats in [0, 1] are scaled up."""
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"{where}: images have dtype {x.dtype}; expected numbers")
    if x.size == 0:
        return x.astype(np.uint8)
    lo, hi = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise UserError(f"{where}: images contain NaN or infinite values")
    if np.issubdtype(x.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return np.round(x.astype(np.float32) * 255.0).astype(np.uint8)
    if lo < 0 or hi > 255:
        raise UserError(
            f"{where}: pixel values span {lo:g}..{hi:g}; expected 0..255 (or floats in 0..1)"
        )
    return np.round(x).astype(np.uint8)


def prepare_arrays(
    images: np.ndarray, channels: int, image_size: tuple[int, int] | None
) -> np.ndarray:
    """uint8 NHWC images with `channels` channels, resized to `image_size` when given."""
    if images.shape[-1] in (2, 4):
        images = images[..., :-1]
    if channels == 3 and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif channels == 1 and images.shape[-1] == 3:
        luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        images = np.round(luma)[..., None].astype(np.uint8)
    if image_size is None or tuple(images.shape[1:3]) == tuple(image_size):
        return np.ascontiguousarray(images)
    chunks = [  # chunked so the float32 intermediate stays small
        resize_uint8(images[i : i + 4096], image_size).numpy() for i in range(0, len(images), 4096)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, *image_size, channels), np.uint8)


def array_source(
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    opts: LoadOptions,
    where: str,
    class_names: list[str] | None = None,
) -> Loaded:
    """Shared tail of the in-memory sources: check, convert and wrap (images, labels) pairs.

    Without `class_names`, the sorted distinct labels become the classes (as strings) and
    labels are renumbered 0..K-1.
    """
    cleaned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (x, y) in parts.items():
        x, y = np.asarray(x), np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise UserError(
                f"{where}: {name} labels have shape {y.shape}; expected one integer label per "
                f"image (multi-label data are not supported)"
            )
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 2, 3, 4):
            raise UserError(
                f"{where}: {name} images have shape {x.shape}; expected (N, H, W) or (N, H, W, C)"
            )
        if len(x) != len(y):
            raise UserError(f"{where}: {len(x)} {name} images but {len(y)} labels")
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
                y = y.astype(np.int64)
            else:
                raise UserError(f"{where}: {name} labels have dtype {y.dtype}; expected integers")
        cleaned[name] = (to_uint8(x, where), y)

    all_labels = np.concatenate([y for _, y in cleaned.values()])
    if class_names is None:
        values = np.unique(all_labels)
        class_names = [str(v) for v in values]
        cleaned = {n: (x, np.searchsorted(values, y)) for n, (x, y) in cleaned.items()}
    elif all_labels.size and (all_labels.min() < 0 or all_labels.max() >= len(class_names)):
        raise UserError(
            f"{where}: labels span {all_labels.min()}..{all_labels.max()} but there are "
            f"{len(class_names)} class names"
        )

    train_x = cleaned["train"][0]
    native_c = 1 if train_x.shape[-1] <= 2 else 3
    channels = {"grayscale": 1, "rgb": 3}.get(opts.color_mode, native_c)
    size = opts.image_size
    if size is None:
        shapes = {x.shape[1:3] for x, _ in cleaned.values()}
        if len(shapes) > 1:
            raise UserError(
                f"{where}: splits have different image sizes {sorted(shapes)}; "
                f"set data.image_size to resize them"
            )
        size = train_x.shape[1:3]
    shape = (int(size[0]), int(size[1]), channels)
    splits = {
        name: Split(
            labels=y.astype(np.int32),
            image_shape=shape,
            images=prepare_arrays(x, channels, opts.image_size),
        )
        for name, (x, y) in cleaned.items()
    }
    return Loaded(class_names=list(class_names), image_shape=shape, splits=splits)
