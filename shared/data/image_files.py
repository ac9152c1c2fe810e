"""Image files a user names on the command line: finding them and decoding them the way
the training pipeline decodes, for the domains that classify images (vision, healthcare).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def expand_inputs(inputs: list[str], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files named on the command line; a folder stands for the images in it."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise UserError(f"no images ({', '.join(suffixes)}) in folder {path}")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"input {path} does not exist")
    if not paths:
        raise UserError("no inputs given: name image files or folders")
    return paths


def decode_file(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image file as the model's input (H, W, C, float32 0..255), as training saw it.

    Decoding and resizing use the same TensorFlow ops as the training pipeline, so a
    file predicts the same as it would have scored inside a dataset.
    """
    height, width, channels = image_shape
    try:
        raw = tf.io.read_file(str(path))
        image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
        raise UserError(f"cannot decode image {path}: {err.message.splitlines()[0]}") from None
    image = tf.cast(image, tf.float32)
    if tuple(image.shape[:2]) != (height, width):
        image = tf.image.resize(image, (height, width))
    return image.numpy()
