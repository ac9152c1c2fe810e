"""Serving an image classifier: encoded bytes or uint8 tensors in, named outputs out.

Shared by the domains that classify images (vision, healthcare):

- `serving_default`: `image_bytes`, a batch of encoded PNG/JPEG/GIF/BMP files (what a
  client has); decoding, channel conversion and resizing happen in the graph, with the
  same TensorFlow ops the training pipeline and `predict` use.
- `serving_image_tensor`: `images`, a uint8 batch (N, H', W', C) of any size, resized
  in the graph.

Both return `probabilities` (float32, N x classes), `class_id` (int64) and `label`
(string, from the run's class names); a subclass may calibrate the probabilities
(`calibrate`) and add outputs (`extra_outputs`: healthcare's positive-class probability). A request with bytes that are not an image fails
with INVALID_ARGUMENT naming the problem; the server and other requests are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

WARMUP_SINGLE = 32  # single-image requests replayed at load (the common request shape)
WARMUP_BATCH = 16  # plus one batched request, so batched kernels are warm too

# First bytes of the formats tf.io.decode_image reads.
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def decode_image_bytes(data: tf.Tensor, image_shape: tuple[int, int, int]) -> tf.Tensor:
    """One encoded image -> (H, W, C) float32 0..255, as the model was trained on.

    Raises InvalidArgumentError (in a graph: fails the request) for bytes that are not
    a supported image, with a message that says so rather than a decoder's internals.
    """
    height, width, channels = image_shape
    known = tf.reduce_any([tf.strings.substr(data, 0, len(magic)) == magic for magic in _MAGIC])
    # The decoder must wait for the check: ops without a data dependency run in any
    # order in a graph, and the decoder's own (less helpful) error could win the race.
    check = tf.debugging.Assert(known, ["image_bytes: not a PNG, JPEG, GIF or BMP image"])
    with tf.control_dependencies([check]):
        data = tf.identity(data)
    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.cast(image, tf.float32)
    image.set_shape([None, None, channels])
    # Bilinear resizing to the same size returns the pixels unchanged, so one path
    # serves both the matching and the different-size case.
    return tf.image.resize(image, (height, width))


def encode_png(image: np.ndarray) -> bytes:
    """A (H, W, C) 0..255 array as PNG bytes (what a client would send)."""
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return tf.io.encode_png(pixels).numpy()


class ImageClassifierServing(tf.Module):
    """The exported object: the Keras classifier, its class names, two signatures."""

    def __init__(self, model, class_names: list[str], image_shape: tuple[int, int, int], name: str):
        super().__init__(name=name)
        self.model = model
        self.image_shape = tuple(int(d) for d in image_shape)
        self.class_names = tf.constant(list(class_names))
        channels = self.image_shape[2]
        self.serve_bytes = tf.function(
            self._serve_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
        )
        self.serve_images = tf.function(
            self._serve_images,
            input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")],
        )

    def calibrate(self, probabilities: tf.Tensor) -> tf.Tensor:
        """The model's probabilities as served (healthcare calibrates them; here as is)."""
        return probabilities

    def extra_outputs(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        """Outputs beyond probabilities, class_id and label (none here)."""
        return {}

    def _outputs(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = self.calibrate(tf.cast(self.model(images, training=False), tf.float32))
        class_id = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(self.class_names, class_id),
            **self.extra_outputs(probabilities),
        }

    def _serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            lambda data: decode_image_bytes(data, self.image_shape),
            image_bytes,
            fn_output_signature=tf.TensorSpec(self.image_shape, tf.float32),
        )
        return self._outputs(images)

    def _serve_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        resized = tf.image.resize(tf.cast(images, tf.float32), self.image_shape[:2])
        return self._outputs(resized)

    def signatures(self) -> dict[str, Any]:
        return {"serving_default": self.serve_bytes, "serving_image_tensor": self.serve_images}


def warmup_requests(
    images: np.ndarray,
    image_shape: tuple[int, int, int],
    outputs: Callable[[np.ndarray], dict[str, np.ndarray]],
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """(requests, expected outputs): `WARMUP_SINGLE` one-image requests and one batch of
    `WARMUP_BATCH` PNG-encoded `images`; `outputs` maps decoded float images to what the
    in-process model gives (the reference the fresh-process check compares with)."""
    encoded = [encode_png(image) for image in images[: WARMUP_SINGLE + WARMUP_BATCH]]
    requests = [np.array([e], dtype=object) for e in encoded[:WARMUP_SINGLE]]
    if len(encoded) > 1:
        requests.append(np.array(encoded[-WARMUP_BATCH:], dtype=object))
    expected = []
    for batch in requests:
        decoded = np.stack([decode_image_bytes(tf.constant(b), image_shape) for b in batch])
        expected.append(outputs(decoded))
    return [{"image_bytes": batch} for batch in requests], expected


def class_outputs(probabilities: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    """probabilities, class_id and label as the serving module returns them."""
    probabilities = np.asarray(probabilities, np.float32)
    ids = probabilities.argmax(axis=1)
    return {
        "probabilities": probabilities,
        "class_id": ids.astype(np.int64),
        "label": np.array([class_names[i].encode() for i in ids], dtype=object),
    }
