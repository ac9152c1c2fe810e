"""Files a user hands `healthcare predict` and `explain`: PNG/JPEG images, decoded as the
training pipeline decodes, and DICOM slices, windowed to 0..255 (CT in Hounsfield units
through `data.window`; other modalities min-max scaled per image) and resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from domains.healthcare.data import window_to_uint8
from shared.data import image_files
from shared.errors import UserError

SUFFIXES = (*image_files.IMAGE_SUFFIXES, ".dcm")


def load_images(
    inputs: list[str], image_shape: tuple[int, int, int], window
) -> tuple[list[Path], np.ndarray]:
    """(paths, float32 images (N, H, W, C) on 0..255) for the files or folders named."""
    paths = image_files.expand_inputs(inputs, SUFFIXES)
    images = [
        dicom_image(p, image_shape, window)
        if p.suffix.lower() == ".dcm"
        else image_files.decode_file(p, image_shape)
        for p in paths
    ]
    return paths, np.stack(images)


def dicom_image(path: Path, image_shape: tuple[int, int, int], window) -> np.ndarray:
    """One single-slice DICOM file as the model's input."""
    image = dicom_pixels(path, window)
    height, width, channels = image_shape
    image = tf.image.resize(image[..., None].astype(np.float32), (height, width)).numpy()
    return np.repeat(image, channels, axis=-1) if channels == 3 else image


def dicom_pixels(path: Path, window) -> np.ndarray:
    """One single-slice DICOM file as float32 (rows, columns) on 0..255: CT windowed to
    `window`, other modalities min-max scaled (a `csv:` manifest's slices are read so too)."""
    from domains.healthcare.dicom_io import read_dicom

    volume = read_dicom(path)
    if volume.array.ndim == 3 and volume.array.shape[2] != 1:
        raise UserError(
            f"{path}: a {volume.array.shape[2]}-slice DICOM; classify takes one 2D slice per input"
        )
    pixels = np.asarray(volume.array).reshape(volume.array.shape[:2]).T  # rows x columns
    if (volume.modality or "").upper() == "CT":
        return window_to_uint8(pixels, window).astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    return ((pixels - low) / (high - low or 1.0) * 255.0).astype(np.float32)
