"""Vision data: which specs the domain takes, loading them, and decoding user files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from domains.vision.config import VisionDataConfig
from shared.data import ImageData, load_image_data, parse_spec
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.run_dir import RunDir

ACCEPTED_SPECS = ("builtin", "folder", "idx", "npz", "tfds")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load(data: VisionDataConfig, seed: int) -> ImageData:
    """Load the configured source with the configured, seeded splits."""
    parse_spec(data.source, accepted=ACCEPTED_SPECS)
    return load_image_data(
        data.source,
        image_size=tuple(data.image_size) if data.image_size else None,
        color_mode=data.color_mode,
        validation_split=data.validation_split,
        test_split=data.test_split,
        seed=seed,
        on_corrupt=data.on_corrupt,
    )


def record_data(run: RunDir, data: ImageData, task: str) -> None:
    """The run's data_splits.json and its input contract (image shape, classes)."""
    info = dict(data.split_info)
    source, splits = info.pop("spec"), info.pop("splits")
    info.pop("image_shape", None), info.pop("class_names", None)  # in the contract
    run.write_splits(source, splits, **info)
    InputContract(
        "vision",
        task,
        [
            InputSpec(
                "image",
                "uint8",
                list(data.image_shape),
                "pixels 0..255; image files are decoded, converted and resized to this",
            )
        ],
        classes=list(data.class_names),
        details={"source": data.spec},
    ).write(run)


def run_inputs(run: RunDir) -> tuple[tuple[int, int, int], list[str]]:
    """(image shape, class names) of a trained run, from its input contract."""
    contract = InputContract.read(run)
    return tuple(contract.input("image").shape), list(contract.classes or [])


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files named on the command line; a folder stands for the images in it."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
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
