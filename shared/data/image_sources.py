"""Image data sources: turn a data spec into an `ImageData` with train/validation/test splits.

One registry maps each spec scheme (builtin, folder, idx, npz, tfds) to a loader. A loader
returns the splits its source ships; the splits it does not ship are then cut from the train
pool by a seeded, stratified split, and `split_info` records which was which so a run
directory says exactly how its data were divided.

Pixel convention: every source yields uint8 pixels on the 0..255 scale; models carry their
own Rescaling, so nothing here normalises.
"""

from __future__ import annotations

import difflib
import gzip
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image

from shared.data.spec import parse_spec
from shared.errors import UserError
from shared.registry import Registry

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "validation", "test")
COLOR_MODES = ("auto", "grayscale", "rgb")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# tfds datasets estimated above this are streamed from disk instead of loaded into memory.
TFDS_IN_MEMORY_LIMIT_BYTES = 1 << 30
# Files up to this size are fully decoded when scanned: verify() alone misses truncated JPEGs.
FULL_CHECK_BYTES = 1 << 20
MAX_CORRUPT_EXAMPLES = 10

SOURCES = Registry("image data source")
BUILTINS = Registry("builtin image dataset")

# PIL modes without colour; anything else (RGB, RGBA, P, CMYK, ...) counts as colour.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


# --------------------------------------------------------------------------- data classes


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


@dataclass
class _Options:
    """The keyword arguments of `load_image_data`, validated once."""

    image_size: tuple[int, int] | None
    color_mode: str
    validation_split: float
    test_split: float
    seed: int
    on_corrupt: str


@dataclass
class _Loaded:
    """What a loader found: the splits its source ships ("train" is always there)."""

    class_names: list[str]
    image_shape: tuple[int, int, int]
    splits: dict[str, Split]
    # Per-split split_info entries the loader fills itself (tfds streamed slices).
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- entry points


def load_image_data(
    spec: str,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    validation_split: float = 0.1,
    test_split: float = 0.2,
    seed: int = 42,
    on_corrupt: str = "skip",
) -> ImageData:
    """Load the image data named by `spec` into train/validation/test splits.

    Splits the source does not ship are seeded, stratified fractions of its train pool:
    `validation_split` and `test_split` are fractions of that pool.
    """
    opts = _Options(
        image_size=_check_image_size(image_size),
        color_mode=_check_choice("color_mode", color_mode, COLOR_MODES),
        validation_split=float(validation_split),
        test_split=float(test_split),
        seed=int(seed),
        on_corrupt=_check_choice("on_corrupt", on_corrupt, ("skip", "fail")),
    )
    scheme, rest = parse_spec(spec, SOURCES.names())
    loaded = SOURCES.get(scheme)(rest, opts)
    return _finish(spec, loaded, opts)


def describe(data: ImageData) -> str:
    """One paragraph for logs: classes, image shape and split sizes."""
    h, w, c = data.image_shape
    names = ", ".join(data.class_names[:10]) + (", ..." if data.num_classes > 10 else "")
    sizes = ", ".join(f"{name} {len(data.splits[name])}" for name in SPLIT_NAMES)
    origins = ", ".join(
        f"{name} {data.split_info['splits'][name]['origin']}" for name in SPLIT_NAMES
    )
    text = (
        f"{data.spec}: {data.num_classes} classes ({names}); images {h}x{w}x{c} "
        f"({'grayscale' if c == 1 else 'RGB'}) as uint8 0..255; splits: {sizes} "
        f"({origins}; seed {data.split_info['seed']})."
    )
    if data.split_info["corrupt_skipped"]:
        text += f" Skipped {data.split_info['corrupt_skipped']} corrupt image file(s)."
    return text


# --------------------------------------------------------------------------- splitting


def _finish(spec: str, loaded: _Loaded, opts: _Options) -> ImageData:
    """Derive the splits the source did not ship and record how every split was made."""
    if len(loaded.class_names) < 2:
        raise UserError(
            f"{spec} has {len(loaded.class_names)} class(es); classification needs at least 2"
        )
    splits = dict(loaded.splits)
    info_splits: dict[str, dict[str, Any]] = {
        name: {"origin": "shipped"} for name in splits if name not in loaded.origins
    }
    info_splits.update(loaded.origins)
    missing = [name for name in SPLIT_NAMES if name not in splits]
    if missing:
        pool = "whole dataset" if len(splits) == 1 else "shipped train"
        fractions = _fractions(missing, opts)
        parts = seeded_split(splits["train"].labels, fractions, opts.seed, what=spec)
        for name, indices in parts.items():
            splits[name] = splits["train"].subset(indices)
            if name == "train":
                info_splits[name] = {"origin": "remainder", "of": pool}
            else:
                info_splits[name] = {
                    "origin": "seeded fraction",
                    "fraction": fractions[name],
                    "of": pool,
                }
    for name in SPLIT_NAMES:
        if len(splits[name]) == 0:
            raise UserError(f"the {name} split of {spec} is empty; add data or change the split")
        counts = _class_counts(splits[name].labels, loaded.class_names)
        info_splits[name] = {"size": len(splits[name]), **info_splits[name]}
        info_splits[name]["class_counts"] = counts
    split_info = {
        "spec": spec,
        "seed": opts.seed,
        "stratified": bool(missing),
        "image_shape": list(loaded.image_shape),
        "class_names": list(loaded.class_names),
        "splits": {name: info_splits[name] for name in SPLIT_NAMES},
        "corrupt_skipped": len(loaded.corrupt),
        "corrupt_examples": loaded.corrupt[:MAX_CORRUPT_EXAMPLES],
    }
    return ImageData(
        spec=spec,
        class_names=list(loaded.class_names),
        image_shape=loaded.image_shape,
        splits={name: splits[name] for name in SPLIT_NAMES},
        split_info=split_info,
    )


def seeded_split(
    labels: np.ndarray, fractions: dict[str, float], seed: int, *, what: str = "the data"
) -> dict[str, np.ndarray]:
    """Stratified, seeded split of `labels` into `fractions` plus the rest as "train".

    Each part gets round(N * fraction) examples (at least one). Examples are shuffled, ranked
    within their class as a fraction of the class size, and parts are cut from that ranking
    in order, so every part holds about its share of every class, and a class with a single
    example stays in train.
    """
    n = len(labels)
    counts = {name: max(1, round(n * frac)) for name, frac in fractions.items()}
    if sum(counts.values()) >= n:
        raise UserError(
            f"{what} has only {n} examples, too few to split off "
            f"{' and '.join(counts)} and keep a train split; add data"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    rank = np.empty(n)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = order[np.argsort(rank[order], kind="stable")]
    parts, start = {}, 0
    for name, count in counts.items():
        parts[name] = order[start : start + count]
        start += count
    parts["train"] = order[start:]
    return parts


def _fractions(missing: list[str], opts: _Options) -> dict[str, float]:
    """The configured fraction for each split the source does not ship, checked."""
    fractions = {}
    for name in missing:
        value = opts.validation_split if name == "validation" else opts.test_split
        if not 0.0 < value < 1.0:
            raise UserError(
                f"{name}_split must be between 0 and 1 (exclusive) because the source ships "
                f"no {name} split; got {value}"
            )
        fractions[name] = value
    if sum(fractions.values()) >= 1.0:
        raise UserError(
            f"{' + '.join(f'{name}_split' for name in fractions)} must be below 1; got "
            f"{' + '.join(str(v) for v in fractions.values())}"
        )
    return fractions


def _class_counts(labels: np.ndarray | None, class_names: list[str]) -> dict[str, int] | None:
    if labels is None:  # streamed tfds split: counting would mean reading it all
        return None
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts, strict=True)}


# --------------------------------------------------------------------------- validation


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise UserError(f"image_size must be (height, width); got {image_size!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"image_size must be positive; got {image_size!r}")
    return h, w


# --------------------------------------------------------------------------- pixels


def fit_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Give an (H, W, 1..4) uint8 image exactly `channels` (1 or 3) channels.

    Alpha is dropped; grey becomes RGB by repetition and RGB becomes grey by luma. Decoded
    files only know their channel count at run time, hence the tf.cond path.
    """
    n = image.shape[-1]
    if n is not None:
        if n in (2, 4):
            image = image[..., :-1]
        if channels == 3 and image.shape[-1] == 1:
            image = tf.tile(image, [1, 1, 3])
        elif channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        return image
    n = tf.shape(image)[-1]
    image = tf.cond(n % 2 == 0, lambda: image[..., :-1], lambda: image)
    n = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(n == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image)
    else:
        image = tf.cond(n == 3, lambda: tf.image.rgb_to_grayscale(image), lambda: image)
    image.set_shape([None, None, channels])
    return image


def resize_uint8(images: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Bilinear, antialiased resize of uint8 image(s), rounded back to uint8."""
    out = tf.image.resize(images, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def _to_uint8(x: np.ndarray, where: str) -> np.ndarray:
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


def _prepare_arrays(
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


def _array_source(
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    opts: _Options,
    where: str,
    class_names: list[str] | None = None,
) -> _Loaded:
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
        cleaned[name] = (_to_uint8(x, where), y)

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
            images=_prepare_arrays(x, channels, opts.image_size),
        )
        for name, (x, y) in cleaned.items()
    }
    return _Loaded(class_names=list(class_names), image_shape=shape, splits=splits)


# --------------------------------------------------------------------------- builtin


@BUILTINS.register("digits")
def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 1797 8x8 handwritten digits, pixels 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target, [str(i) for i in range(10)]


@SOURCES.register("builtin")
def _load_builtin(rest: str, opts: _Options) -> _Loaded:
    images, labels, class_names = BUILTINS.get(rest)()
    return _array_source({"train": (images, labels)}, opts, f"builtin:{rest}", class_names)


# --------------------------------------------------------------------------- npz

_NPZ_KEYS = {
    "train": [("x_train", "y_train"), ("train_images", "train_labels")],
    "validation": [
        ("x_val", "y_val"),
        ("x_validation", "y_validation"),
        ("val_images", "val_labels"),
        ("validation_images", "validation_labels"),
    ],
    "test": [("x_test", "y_test"), ("test_images", "test_labels")],
}


@SOURCES.register("npz")
def _load_npz(rest: str, opts: _Options) -> _Loaded:
    """x_train/y_train (+ x_val/x_validation, x_test) or MedMNIST's train_images/... keys."""
    path = Path(rest).expanduser()
    if not path.is_file():
        raise UserError(f"npz file {path} does not exist" + _is_dir_hint(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as e:  # zipfile, pickle and format errors all mean "not a usable npz"
        raise UserError(f"cannot read {path} as .npz: {e}") from e
    parts = {}
    for split, candidates in _NPZ_KEYS.items():
        for x_key, y_key in candidates:
            if x_key in arrays or y_key in arrays:
                if x_key not in arrays or y_key not in arrays:
                    raise UserError(
                        f"{path} has {x_key if x_key in arrays else y_key} but not "
                        f"{y_key if x_key in arrays else x_key}"
                    )
                parts[split] = (arrays[x_key], arrays[y_key])
                break
    if "train" not in parts:
        raise UserError(
            f"{path} has no x_train/y_train (or train_images/train_labels) arrays; "
            f"keys found: {', '.join(sorted(arrays)) or 'none'}"
        )
    names = None
    if "class_names" in arrays:
        names = [str(v) for v in np.asarray(arrays["class_names"]).reshape(-1)]
    return _array_source(parts, opts, str(path), names)


def _is_dir_hint(path: Path) -> str:
    return " (it is a folder; use folder: for image folders)" if path.is_dir() else ""


# --------------------------------------------------------------------------- idx


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


@SOURCES.register("idx")
def _load_idx(rest: str, opts: _Options) -> _Loaded:
    """MNIST-format IDX files: a directory of train/t10k files, or one images file."""
    path = Path(rest).expanduser()
    if not path.exists():
        raise UserError(f"IDX path {path} does not exist")
    parts = {}
    if path.is_dir():
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images = _idx_path(path, f"{prefix}-images-idx3-ubyte")
            labels = _idx_path(path, f"{prefix}-labels-idx1-ubyte")
            if images and labels:
                parts[split] = _idx_pair(images, labels)
            elif images or labels:
                raise UserError(f"{path}: found {(images or labels).name} without its partner")
        if "train" not in parts:
            raise UserError(
                f"{path} holds no train-images-idx3-ubyte + train-labels-idx1-ubyte "
                f"(optionally .gz)"
            )
    else:
        name = path.name
        for images_part, labels_part in (
            ("images-idx3", "labels-idx1"),
            ("images.idx3", "labels.idx1"),
        ):
            if images_part in name:
                labels_path = path.with_name(name.replace(images_part, labels_part))
                break
        else:
            raise UserError(f"{path}: an IDX images file name must contain 'images-idx3'")
        if not labels_path.is_file():
            raise UserError(f"labels file {labels_path} for {path} does not exist")
        parts["train"] = _idx_pair(path, labels_path)
    return _array_source(parts, opts, str(path))


# --------------------------------------------------------------------------- folder


@SOURCES.register("folder")
def _load_folder(rest: str, opts: _Options) -> _Loaded:
    """One sub-folder per class, or train/ + val|validation/ + test/ each holding those."""
    root = Path(rest).expanduser()
    if not root.exists():
        raise UserError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UserError(
            f"{root} is a file; folder: expects a directory with one sub-folder per class"
        )
    layout = _folder_layout(root)
    listed = {split: _list_class_files(directory) for split, directory in layout.items()}
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
        (p, problem) for (_, p, _), (problem, _, _) in zip(entries, scans, strict=True) if problem
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
    good = [(e, s) for e, s in zip(entries, scans, strict=True) if s[0] is None]

    if opts.color_mode == "auto":
        channels = 3 if any(mode not in _GRAY_MODES for _, (_, _, mode) in good) else 1
    else:
        channels = 3 if opts.color_mode == "rgb" else 1
    sizes = {size for _, (_, size, _) in good}
    if opts.image_size is None and len(sizes) > 1:
        a, b = sorted(sizes)[:2]
        raise UserError(
            f"images in {root} have different sizes (e.g. {a[0]}x{a[1]} and {b[0]}x{b[1]}); "
            f"set data.image_size to resize them"
        )
    size = opts.image_size or next(iter(sizes))
    shape = (int(size[0]), int(size[1]), channels)
    resize = opts.image_size is not None and sizes != {tuple(opts.image_size)}
    splits = {}
    for split in layout:
        rows = [(p, label) for (s, p, label), _ in good if s == split]
        splits[split] = Split(
            labels=np.array([label for _, label in rows], np.int32),
            image_shape=shape,
            paths=np.array([p for p, _ in rows], dtype=str),
            resize=resize,
        )
    return _Loaded(
        class_names=class_names, image_shape=shape, splits=splits, corrupt=[p for p, _ in corrupt]
    )


def _folder_layout(root: Path) -> dict[str, Path]:
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


def _list_class_files(directory: Path) -> dict[str, list[Path]]:
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


def _inspect_image(path: str) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """(problem or None, (height, width), PIL mode) for one image file, cheaply."""
    try:
        with Image.open(path) as im:
            im.verify()  # checks structure (and PNG checksums) without decoding pixels
        with Image.open(path) as im:  # verify() leaves the image unusable: reopen
            size, mode, fmt = (im.height, im.width), im.mode, im.format
            if fmt not in ("PNG", "JPEG", "BMP", "GIF"):
                return f"{fmt} data, which TensorFlow cannot decode", None, None
            if fmt == "BMP" and mode in ("1", "P"):
                return "1-bit or palette BMP, which TensorFlow decodes wrongly", None, None
            if os.path.getsize(path) <= FULL_CHECK_BYTES:
                im.load()  # full decode: the only cheap way to catch truncated pixel data
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"{type(e).__name__}: {e}", None, None
    if min(size) < 1:
        return "empty image", None, None
    return None, size, mode


# --------------------------------------------------------------------------- tfds


@SOURCES.register("tfds")
def _load_tfds(rest: str, opts: _Options) -> _Loaded:
    """A TensorFlow Datasets image classification set, `NAME` or `NAME:SPLIT`."""
    import tensorflow_datasets as tfds  # heavy import, so only when asked for
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    name, _, only_split = rest.partition(":")
    try:
        builder = tfds.builder(name)
    except DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise UserError(f"unknown tfds dataset {name!r}{hint}") from None
    image_key, label_key = _tfds_keys(builder, name)
    features = builder.info.features
    class_names = [str(n) for n in features[label_key].names]
    native = tuple(features[image_key].shape)
    channels = {"grayscale": 1, "rgb": 3}.get(opts.color_mode, 1 if native[-1] == 1 else 3)
    size = opts.image_size or native[:2]
    if None in size:
        raise UserError(f"tfds:{name} images vary in size; set data.image_size to resize them")
    shape = (int(size[0]), int(size[1]), channels)
    resize = tuple(size) != native[:2]

    try:
        builder.download_and_prepare()
    except Exception as e:  # network, manual-download and disk errors alike
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot prepare tfds dataset {name}: {first_line}") from e

    if only_split:
        wanted = {"train": only_split}
    else:
        known = set(builder.info.splits) or set(SPLIT_NAMES)  # mock data ship no split metadata
        wanted = {split: split for split in SPLIT_NAMES if split in known}
        if "train" not in wanted:
            raise UserError(
                f"tfds:{name} has no train split (splits: {', '.join(sorted(known))}); "
                f"name one as tfds:{name}:SPLIT"
            )

    def read(split: str) -> tf.data.Dataset:
        return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)

    sizes = {split: _tfds_size(builder, split, read) for split in wanted.values()}
    estimate = sum(sizes.values()) * int(np.prod(shape))
    kw = dict(labels=None, image_shape=shape, resize=resize)
    if estimate <= TFDS_IN_MEMORY_LIMIT_BYTES:
        splits = {}
        for split, tfds_split in wanted.items():
            part = Split(stream=lambda s=tfds_split: read(s), num_examples=sizes[tfds_split], **kw)
            images, labels = _load_with_progress(part, f"tfds:{name}:{tfds_split}")
            splits[split] = Split(labels=labels, image_shape=shape, images=images)
        return _Loaded(class_names=class_names, image_shape=shape, splits=splits)

    # Too big for memory: stream shipped splits, and carve missing ones as fixed index ranges
    # of the train split (tfds slicing reads only those records; not shuffled, not stratified).
    log.warning("tfds:%s is about %.1f GiB decoded; streaming it from disk", name, estimate / 2**30)
    splits = {
        split: Split(stream=lambda s=s: read(s), num_examples=sizes[s], **kw)
        for split, s in wanted.items()
    }
    origins: dict[str, dict[str, Any]] = {}
    missing = [split for split in SPLIT_NAMES if split not in wanted]
    if missing:
        pool = wanted["train"]
        if "[" in pool:
            raise UserError(
                f"tfds:{name}:{pool} is too big to load and cannot be sliced further; name a "
                f"whole split such as tfds:{name}:train"
            )
        n = sizes[pool]
        counts = {split: max(1, round(n * f)) for split, f in _fractions(missing, opts).items()}
        if sum(counts.values()) >= n:
            raise UserError(f"tfds:{name}:{pool} has too few examples to split")
        start = 0
        for split, count in counts.items():
            sliced = f"{pool}[{start}:{start + count}]"
            splits[split] = Split(stream=lambda s=sliced: read(s), num_examples=count, **kw)
            origins[split] = {"origin": "index slice", "tfds_split": sliced}
            start += count
        rest_slice = f"{pool}[{start}:]"
        splits["train"] = Split(stream=lambda: read(rest_slice), num_examples=n - start, **kw)
        origins["train"] = {"origin": "index slice", "tfds_split": rest_slice}
    return _Loaded(class_names=class_names, image_shape=shape, splits=splits, origins=origins)


def _tfds_keys(builder: Any, name: str) -> tuple[str, str]:
    """The (image, label) feature names, checking this is image classification data."""
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    features = builder.info.features
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise UserError(f"tfds:{name} has no (image, label) supervised keys")
    image_key, label_key = keys
    if not isinstance(features[image_key], tfds.features.Image):
        raise UserError(f"tfds:{name} input {image_key!r} is not an image")
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise UserError(f"tfds:{name} target {label_key!r} is not a class label")
    return image_key, label_key


def _tfds_size(builder: Any, split: str, read: Callable[[str], tf.data.Dataset]) -> int:
    """Number of examples in a tfds split (which may be sliced, e.g. train[:10%])."""
    if not builder.info.splits:  # no split metadata (mock data): count, reading it once
        return int(read(split).reduce(0, lambda n, _: n + 1))
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError) as e:  # unknown split name or bad slice syntax
        raise UserError(f"tfds:{builder.name} split {split!r}: {e}") from None


def _load_with_progress(part: Split, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode a whole tfds split into memory, with a progress bar."""
    import keras

    bar = keras.utils.Progbar(len(part) or None, unit_name="image")
    images, labels = [np.zeros((0, *part.image_shape), np.uint8)], [np.zeros(0, np.int32)]
    log.info("loading %s into memory", label)
    ds = part.source().map(part.decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for x, y in ds.batch(1024).prefetch(2).as_numpy_iterator():
        images.append(x)
        labels.append(y)
        bar.add(len(y))
    return np.concatenate(images), np.concatenate(labels)
