"""uint8 pixel operations shared by the decoders and the in-memory sources."""

from __future__ import annotations

import tensorflow as tf


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
