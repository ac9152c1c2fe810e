"""Turn one split of an `ImageData` into a batched `tf.data.Dataset` for Keras.

Batches are (float32 images [B, H, W, C] on the 0..255 scale, int32 labels [B]); models
carry their own Rescaling. Everything the pipeline needs comes in through the arguments, so
the same `ImageData` serves several workers or strategies at once.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.data.sources import ImageData, Split
from shared.errors import UserError

# `cache=None` caches a split when its decoded uint8 images are estimated below this.
CACHE_LIMIT_BYTES = 1 << 30
# Shuffle buffers hold decoded images; cap them at about this much memory.
SHUFFLE_BUFFER_BYTES = 256 << 20


def image_dataset(
    data: ImageData,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = 42,
    augment: keras.layers.Layer | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
    cache: bool | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of one split: decode, cache, shuffle, batch, augment, prefetch.

    - `shuffle` reshuffles every epoch from `seed`; `seed=None` also lets parallel maps
      return elements out of order, which is faster but not reproducible.
    - `augment` is applied to every batch (pass it for training only).
    - `cache=None` caches when the decoded split is estimated below 1 GiB.
    - `input_context` (from `strategy.distribute_datasets_from_function`): `batch_size` is
      then the global batch; this worker reads its shard with the per-replica batch size.
    """
    if split not in data.splits:
        raise UserError(f"unknown split {split!r}; splits: {', '.join(data.splits)}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1; got {batch_size}")
    part = data.splits[split]
    deterministic = seed is not None
    if cache is None:
        cache = _decoded_bytes(part) < CACHE_LIMIT_BYTES

    ds = part.source()
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    # Without a cache, shuffle file paths before decoding: a full-size buffer of strings is
    # cheap, while a buffer of decoded images is not.
    shuffle_early = shuffle and part.kind == "files" and not cache
    if shuffle_early:
        ds = ds.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
    if part.kind != "arrays":
        ds = ds.map(part.decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if cache:
        ds = ds.cache()
    if shuffle and not shuffle_early:
        ds = ds.shuffle(_buffer_size(part), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if augment is not None:
        ds = ds.map(
            lambda x, y: (augment(x, training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    ds = ds.prefetch(tf.data.AUTOTUNE)

    options = tf.data.Options()
    options.deterministic = deterministic
    # Sharded above when there is an input context; otherwise let a distribution strategy
    # shard by element (these datasets do not come from files it could split).
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
        if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options)


def _to_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32), tf.cast(labels, tf.int32)


def _decoded_bytes(part: Split) -> int:
    h, w, c = part.image_shape
    return len(part) * h * w * c


def _buffer_size(part: Split) -> int:
    """The whole split when it fits the buffer budget, else as many images as do."""
    h, w, c = part.image_shape
    return max(1, min(len(part), max(1024, SHUFFLE_BUFFER_BYTES // (h * w * c))))
