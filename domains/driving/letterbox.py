"""Letterboxing: any image to the model's input size, aspect ratio kept, padded.

The image is scaled by one factor so it fits, centred, and the rest is filled. Boxes
follow with the per-axis factors the resize actually used (the rounded new size over
the old), so mapped boxes lie exactly on the resized pixels and map back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# Ultralytics pads with grey 114, which keeps padding neutral after normalisation.
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How an image of (height, width) went into an input of (out_height, out_width)."""

    height: int
    width: int
    out_height: int
    out_width: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int


def letterbox_geometry(height: int, width: int, size: int | tuple[int, int]) -> Letterbox:
    """The scale and offsets that fit (height, width) into `size` (square or (h, w))."""
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(height, width, out_h, out_w) < 1:
        raise ValueError(f"cannot letterbox {height}x{width} into {out_h}x{out_w}")
    ratio = min(out_h / height, out_w / width)
    new_w = min(out_w, max(1, round(width * ratio)))
    new_h = min(out_h, max(1, round(height * ratio)))
    return Letterbox(
        height=height,
        width=width,
        out_height=out_h,
        out_width=out_w,
        scale_x=new_w / width,
        scale_y=new_h / height,
        pad_x=(out_w - new_w) // 2,
        pad_y=(out_h - new_h) // 2,
    )


def letterbox_image(
    image: np.ndarray,
    size: int | tuple[int, int],
    *,
    nearest: bool = False,
    fill: int | float = PAD_VALUE,
) -> tuple[np.ndarray, Letterbox]:
    """`image` (H, W) or (H, W, C), uint8 or float, letterboxed into `size`.

    `nearest=True` for masks (class ids must not blend), with `fill=0` (background).
    """
    image = np.asarray(image)
    box = letterbox_geometry(image.shape[0], image.shape[1], size)
    new_w = round(box.width * box.scale_x)
    new_h = round(box.height * box.scale_y)
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    if (new_h, new_w) == image.shape[:2]:
        resized = image
    elif image.dtype == np.uint8:
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample))
    else:  # float images: resize each channel in PIL's float mode
        chans = image.reshape(*image.shape[:2], -1).astype(np.float32)
        resized = np.stack(
            [
                np.asarray(Image.fromarray(chans[..., c]).resize((new_w, new_h), resample))
                for c in range(chans.shape[-1])
            ],
            axis=-1,
        ).reshape(new_h, new_w, *image.shape[2:])
    out = np.full((box.out_height, box.out_width, *image.shape[2:]), fill, dtype=image.dtype)
    out[box.pad_y : box.pad_y + new_h, box.pad_x : box.pad_x + new_w] = resized
    return out, box


def boxes_to_letterbox(boxes: np.ndarray, box: Letterbox) -> np.ndarray:
    """Pixel boxes of the original image as pixel boxes of the letterboxed input."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([box.scale_x, box.scale_y] * 2)
    offset = np.array([box.pad_x, box.pad_y] * 2, np.float64)
    return (b * scale + offset).astype(np.float32)


def boxes_from_letterbox(boxes: np.ndarray, box: Letterbox, *, clip: bool = True) -> np.ndarray:
    """Pixel boxes of the letterboxed input (a model's output) as pixel boxes of the
    original image, clipped to it unless `clip=False`."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([box.scale_x, box.scale_y] * 2)
    offset = np.array([box.pad_x, box.pad_y] * 2, np.float64)
    out = (b - offset) / scale
    if clip:
        out = np.clip(out, 0.0, [box.width, box.height, box.width, box.height])
    return out.astype(np.float32)
