"""`tfds:NAME[:SPLIT]`: a TensorFlow Datasets image classification set.

Small sets are decoded into memory; sets estimated above TFDS_IN_MEMORY_LIMIT_BYTES are
streamed from disk, with missing splits carved as index ranges of the train split.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from shared.data.sources.base import SOURCES, SPLIT_NAMES, Loaded, LoadOptions, Split
from shared.errors import UserError

log = logging.getLogger(__name__)

TFDS_IN_MEMORY_LIMIT_BYTES = 1 << 30


@SOURCES.register("tfds")
def _load_tfds(rest: str, opts: LoadOptions) -> Loaded:
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
        return Loaded(class_names=class_names, image_shape=shape, splits=splits)

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
        counts = {split: max(1, round(n * f)) for split, f in opts.fractions(missing).items()}
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
    return Loaded(class_names=class_names, image_shape=shape, splits=splits, origins=origins)


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
