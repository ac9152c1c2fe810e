"""What every image source shares: the data classes, the registries and option checks.

Pixel convention: every source yields uint8 pixels on the 0..255 scale; models carry their
own Rescaling, so nothing here normalises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from shared.data.sources.pixels import fit_channels, resize_uint8
from shared.data.splits import split_sizes
from shared.errors import UserError
from shared.registry import Registry

SPLIT_NAMES = ("train", "validation", "test")
COLOR_MODES = ("auto", "grayscale", "rgb")

SOURCES = Registry("image data source")
BUILTINS = Registry("builtin image dataset")


@dataclass(eq=False)
class Split:
    """One split, held in one of three ways (see `kind`).

    - "arrays": `images` uint8 (N, H, W, C) and `labels` int32 (N,) in memory.
    - "files": `paths` to image files and `labels`; decoded lazily by the tf.data pipeline.
    - "stream": `stream()` yields (image, label) from a tfds split too big for memory;
      `labels` is None and `num_examples` gives the size.

    `image_shape` is the (H, W, C) every decoded image has; `resize` says whether decoding
    must resize to it (False: the source already has that size).
    """

    labels: np.ndarray | None
    image_shape: tuple[int, int, int]
    images: np.ndarray | None = None
    paths: np.ndarray | None = None
    stream: Callable[[], tf.data.Dataset] | None = None
    num_examples: int | None = None
    resize: bool = False

    @property
    def kind(self) -> str:
        if self.images is not None:
            return "arrays"
        if self.paths is not None:
            return "files"
        return "stream"

    def __len__(self) -> int:
        if self.labels is not None:
            return len(self.labels)
        return int(self.num_examples or 0)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        return f"Split({len(self)} examples of {shape}, {self.kind})"

    def subset(self, indices: np.ndarray) -> Split:
        """The examples at `indices` (arrays and files only), keeping their order."""
        if self.kind == "stream":
            raise TypeError("a streamed split cannot be indexed")
        return Split(
            labels=self.labels[indices],
            image_shape=self.image_shape,
            images=None if self.images is None else self.images[indices],
            paths=None if self.paths is None else self.paths[indices],
            resize=self.resize,
        )

    def source(self) -> tf.data.Dataset:
        """Undecoded elements: (image, label), (path, label) or the tfds stream."""
        if self.kind == "arrays":
            return tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        if self.kind == "files":
            return tf.data.Dataset.from_tensor_slices((self.paths, self.labels))
        return self.stream()

    def decode(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Map one `source()` element to (uint8 image of `image_shape`, int32 label)."""
        if self.kind == "arrays":
            return x, y
        if self.kind == "files":
            x = tf.io.decode_image(tf.io.read_file(x), channels=0, expand_animations=False)
        x = fit_channels(x, self.image_shape[2])
        if self.resize:
            x = resize_uint8(x, self.image_shape[:2])
        x = tf.ensure_shape(x, self.image_shape)
        return x, tf.cast(y, tf.int32)

    def arrays(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first `limit` examples (all when None) as uint8 NHWC images and int32 labels.

        Decodes exactly as the training pipeline does, so plots show what the model saw.
        """
        if self.kind == "arrays":
            return self.images[:limit], self.labels[:limit]
        ds = self.source()
        if limit is not None:
            ds = ds.take(limit)
        ds = ds.map(self.decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        images, labels = [np.zeros((0, *self.image_shape), np.uint8)], [np.zeros(0, np.int32)]
        for x, y in ds.batch(256).as_numpy_iterator():
            images.append(x)
            labels.append(y)
        return np.concatenate(images), np.concatenate(labels)


@dataclass(eq=False)
class ImageData:
    """A loaded image classification data set: classes, image shape and three splits."""

    spec: str
    class_names: list[str]
    image_shape: tuple[int, int, int]
    splits: dict[str, Split]
    split_info: dict[str, Any]
    num_classes: int = field(init=False)

    def __post_init__(self) -> None:
        self.num_classes = len(self.class_names)

    def summary(self) -> str:
        """Classes, image shape, split sizes and how each split was made (the run's log line)."""
        from shared.data.sources.load import describe

        return describe(self)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return (
            f"ImageData({self.spec!r}, {self.num_classes} classes, "
            f"{'x'.join(map(str, self.image_shape))}, splits: {sizes})"
        )


@dataclass
class LoadOptions:
    """The keyword arguments of `load_image_data`, validated once."""

    image_size: tuple[int, int] | None
    color_mode: str
    validation_split: float
    test_split: float
    seed: int
    on_corrupt: str

    def fractions(self, missing: list[str]) -> dict[str, float]:
        """The configured fraction for each split the source does not ship, checked."""
        fractions = {}
        for name in missing:
            value = self.validation_split if name == "validation" else self.test_split
            if not 0.0 < value < 1.0:
                raise UserError(
                    f"{name}_split must be between 0 and 1 (exclusive) because the source "
                    f"ships no {name} split; got {value}"
                )
            fractions[name] = value
        if sum(fractions.values()) >= 1.0:
            raise UserError(
                f"{' + '.join(f'{name}_split' for name in fractions)} must be below 1; got "
                f"{' + '.join(str(v) for v in fractions.values())}"
            )
        return fractions


@dataclass
class Loaded:
    """What a loader found: the splits its source ships ("train" is always there)."""

    class_names: list[str]
    image_shape: tuple[int, int, int]
    splits: dict[str, Split]
    # Per-split split_info entries the loader fills itself (tfds streamed slices).
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    # Content hashes per split of files-kind splits, one per path (arrays are hashed later).
    keys: dict[str, np.ndarray] = field(default_factory=dict)
    # Sentences for the log and split_info about how the source was read.
    notes: list[str] = field(default_factory=list)


def content_key(data: bytes) -> bytes:
    """A short digest of `data`: equal digests mean exactly equal bytes."""
    return hashlib.blake2b(data, digest_size=16).digest()


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise UserError(f"image_size must be (height, width); got {image_size!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"image_size must be positive; got {image_size!r}")
    return h, w
