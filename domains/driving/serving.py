"""Serving the perception network: TF Serving signatures and their `ServingSpec`.

`PerceptionServing` (a `tf.Module`) has two signatures, all preprocessing in the graph:

- `serving_default`: `image_bytes` (tf.string, [N]), encoded PNG/JPEG/GIF/BMP files of
  any size and aspect ratio, sizes may differ within a batch. Bytes that are not an
  image fail the request with INVALID_ARGUMENT ("image_bytes: not a PNG, JPEG, GIF or
  BMP image", the shared check of `shared.export.image_serving`); so does an empty
  batch ("image_bytes: the batch is empty").
- `serving_images`: `images` (uint8, [N, H, W, 3]), one size per batch; same outputs.

Each image is letterboxed as training does it (`letterbox.letterbox_geometry`: one scale,
rounded new size, centred integer padding of grey 114; bilinear resize with antialiasing,
rounded to whole grey levels like PIL's uint8 output, see `RESIZE_NOTE`), the detector
runs, and the outputs come back in each input image's own pixels:

- `boxes` float32 (N, max_detections, 4): xyxy, clipped to the image; rows past
  `num_detections` are 0.
- `scores` float32 (N, max_detections), `classes` int32 (N, max_detections), `labels`
  string (N, max_detections): class names, "" past `num_detections`.
- `num_detections` int32 (N,): how many rows are real (at most `max_detections`).
- `mask` uint8 (N, max height, max width), when segmentation is on: class ids (0
  background, see the export's `mask_names`) in each image's pixels, the letterbox
  padding removed and resized back nearest-neighbour exactly as `train_loop._mask_to_frame`
  does with PIL. In a batch of different sizes every mask is padded with 0 at the bottom
  and right to the batch's largest height and width: crop `mask[i, :h, :w]` with
  `image_size[i] = (h, w)`.
- `image_size` int32 (N, 2): each input image's (height, width).

The TFLite export is `serving_tflite`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.driving.letterbox import PAD_VALUE
from domains.driving.model import PerceptionConfig, detector
from shared.export import ServingSpec, served_examples
from shared.export.image_serving import _MAGIC

# Training letterboxes with PIL's bilinear resize (uint8 in, uint8 out). Measured against
# it on simulated frames (320x160, 1242x375, 128x64) and three photos (sklearn's
# china/flower, matplotlib's grace_hopper) into 64x128, 160x320 and 640x1280 inputs:
# tf.image.resize bilinear with antialias=False is 4-12 grey levels off on average when
# downscaling (up to 158: it samples instead of averaging), with antialias=True 0.23-0.27
# (float) and 0.05-0.12 mean / 1 max once rounded to whole levels; upscaling 0.16-0.23
# mean / 1 max either way. So: antialias=True, rounded; under one grey level, and
# letterbox.py (PIL) stays as it is.
RESIZE_NOTE = "bilinear, antialias=True, rounded: mean |diff| <= 0.23, max 1 grey level vs PIL"
# Geometry per image, int32: height, width, new height, new width, pad top, pad left.
_GEOMETRY = 6


# === Letterboxing and its inverse, in the graph ===
def letterbox_graph(image: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """(H, W, 3) image, 0..255 any dtype -> ((out_h, out_w, 3) float32 letterboxed,
    (6,) int32 geometry [H, W, new_h, new_w, pad_y, pad_x]).

    The geometry is `letterbox_geometry`'s (float64 ratio, round half to even like
    Python's `round`, padding floor-halved), so boxes map exactly as in-process.
    """
    out_h, out_w = int(size[0]), int(size[1])
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    h64, w64 = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    ratio = tf.minimum(out_h / h64, out_w / w64)
    new_h = tf.clip_by_value(tf.cast(tf.round(h64 * ratio), tf.int32), 1, out_h)
    new_w = tf.clip_by_value(tf.cast(tf.round(w64 * ratio), tf.int32), 1, out_w)
    pad_y, pad_x = (out_h - new_h) // 2, (out_w - new_w) // 2
    pixels = tf.cast(image, tf.float32)
    # Resizing to the same size returns the pixels unchanged (no rounding needed then).
    resized = tf.image.resize(pixels, tf.stack([new_h, new_w]), antialias=True)
    resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    padded = tf.pad(
        resized,
        [[pad_y, out_h - new_h - pad_y], [pad_x, out_w - new_w - pad_x], [0, 0]],
        constant_values=float(PAD_VALUE),
    )
    padded = tf.ensure_shape(padded, [out_h, out_w, 3])
    return padded, tf.stack([height, width, new_h, new_w, pad_y, pad_x])


def _pil_nearest_index(size_in: tf.Tensor, size_out: tf.Tensor) -> tf.Tensor:
    """Source index of each output pixel of PIL's NEAREST resize (Pillow's
    ImagingScaleAffine: x = in/out * 0.5, then += in/out per pixel, in double, truncated).

    The running sum must be sequential to give PIL's exact doubles: tf.math.cumsum on
    CPU does (checked equal to numpy's sequential sum up to 20000 pixels, and against
    PIL itself in the tests); the closed form floor((i + 0.5) * in/out) differs from
    PIL on about 0.1% of pixels.
    """
    step = tf.cast(size_in, tf.float64) / tf.cast(size_out, tf.float64)
    steps = tf.concat([[0.5 * step], tf.fill([size_out - 1], step)], axis=0)
    return tf.minimum(tf.cast(tf.math.cumsum(steps), tf.int32), size_in - 1)


def mask_to_image(mask: tf.Tensor, geometry: tf.Tensor, out_size: tf.Tensor) -> tf.Tensor:
    """(out_h, out_w) letterboxed class ids -> the image's own pixels (nearest, as
    `train_loop._mask_to_frame` with PIL), zero-padded bottom/right to `out_size`."""
    height, width, new_h, new_w, pad_y, pad_x = tf.unstack(geometry)
    crop = mask[pad_y : pad_y + new_h, pad_x : pad_x + new_w]
    rows = _pil_nearest_index(new_h, height)
    cols = _pil_nearest_index(new_w, width)
    back = tf.gather(tf.gather(crop, rows, axis=0), cols, axis=1)
    return tf.pad(back, [[0, out_size[0] - height], [0, out_size[1] - width]])


def boxes_to_image(boxes: tf.Tensor, geometry: tf.Tensor) -> tf.Tensor:
    """(N, M, 4) xyxy boxes in letterboxed pixels -> each image's pixels, clipped to it:
    `letterbox.boxes_from_letterbox` in the graph (float64, the same operations)."""
    g = tf.cast(geometry, tf.float64)
    height, width, new_h, new_w, pad_y, pad_x = tf.unstack(g, axis=-1)
    scale_x, scale_y = new_w / width, new_h / height
    scale = tf.stack([scale_x, scale_y, scale_x, scale_y], axis=-1)[:, None, :]
    offset = tf.stack([pad_x, pad_y, pad_x, pad_y], axis=-1)[:, None, :]
    limit = tf.stack([width, height, width, height], axis=-1)[:, None, :]
    out = (tf.cast(boxes, tf.float64) - offset) / scale
    return tf.cast(tf.clip_by_value(out, 0.0, limit), tf.float32)


def _checked_bytes(data: tf.Tensor) -> tf.Tensor:
    """`data`, after the shared magic-bytes check (the one `decode_image_bytes` runs):
    a clear INVALID_ARGUMENT instead of a decoder's message for bytes that are not an
    image. The decoder waits for it (control dependency), so its error cannot win."""
    known = tf.reduce_any([tf.strings.substr(data, 0, len(magic)) == magic for magic in _MAGIC])
    check = tf.debugging.Assert(known, ["image_bytes: not a PNG, JPEG, GIF or BMP image"])
    with tf.control_dependencies([check]):
        return tf.identity(data)


def _non_empty(batch: tf.Tensor, name: str) -> tf.Tensor:
    """`batch`, after a check that it has images: the network's kernels fail on an empty
    batch with a shape error that names none of the request."""
    check = tf.debugging.Assert(tf.shape(batch)[0] > 0, [f"{name}: the batch is empty"])
    with tf.control_dependencies([check]):
        return tf.identity(batch)


# === The serving module ===
class PerceptionServing(tf.Module):
    """The exported object: the decoded detector (`model.detector`), class names, and
    the `serving_default` (bytes) and `serving_images` (uint8 tensors) signatures."""

    def __init__(
        self,
        model: keras.Model,
        config: PerceptionConfig,
        class_names: Sequence[str],
        name: str = "driving_perception",
    ):
        super().__init__(name=name)
        if config.detection and len(class_names) != config.num_classes:
            raise ValueError(
                f"{len(class_names)} class names for a model of {config.num_classes} classes"
            )
        self.detector = detector(model, config)
        self.image_size = (int(config.image_size[0]), int(config.image_size[1]))
        self.detection = bool(config.detection)
        self.segmentation = bool(config.segmentation)
        self.max_detections = int(config.max_detections)
        self.class_names = tf.constant([str(c) for c in class_names] or [""])
        h, w = self.image_size
        self._letterboxed = (
            tf.TensorSpec((h, w, 3), tf.float32),
            tf.TensorSpec((_GEOMETRY,), tf.int32),
        )
        self.serve_bytes = tf.function(
            self._serve_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
        )
        self.serve_images = tf.function(
            self._serve_images,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
        )

    def _decode(self, data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(_checked_bytes(data), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return letterbox_graph(image, self.image_size)

    def _serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        image_bytes = _non_empty(image_bytes, "image_bytes")
        images, geometry = tf.map_fn(
            self._decode, image_bytes, fn_output_signature=self._letterboxed
        )
        return self._outputs(images, geometry)

    def _serve_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        images = _non_empty(images, "images")
        letterboxed, geometry = tf.map_fn(
            lambda image: letterbox_graph(image, self.image_size),
            images,
            fn_output_signature=self._letterboxed,
        )
        return self._outputs(letterboxed, geometry)

    def _outputs(self, images: tf.Tensor, geometry: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = self.detector(images, training=False)
        out: dict[str, tf.Tensor] = {"image_size": geometry[:, :2]}
        if self.detection:
            count = raw["num_detections"]
            valid = tf.range(self.max_detections)[None, :] < count[:, None]
            boxes = boxes_to_image(raw["boxes"], geometry)
            out.update(
                boxes=tf.where(valid[..., None], boxes, 0.0),
                scores=tf.where(valid, raw["scores"], 0.0),
                classes=tf.where(valid, raw["classes"], 0),
                labels=tf.where(valid, tf.gather(self.class_names, raw["classes"]), ""),
                num_detections=count,
            )
        if self.segmentation:
            largest = tf.reduce_max(geometry[:, :2], axis=0)
            out["mask"] = tf.map_fn(
                lambda item: mask_to_image(item[0], item[1], largest),
                (raw["mask"], geometry),
                fn_output_signature=tf.TensorSpec([None, None], tf.uint8),
            )
        return out

    def signatures(self) -> dict[str, Any]:
        return {"serving_default": self.serve_bytes, "serving_images": self.serve_images}


def perception_serving_spec(
    model: keras.Model,
    config: PerceptionConfig,
    class_names: Sequence[str],
    mask_names: Sequence[str] | None,
    examples: Sequence[bytes],
    metadata: Mapping[str, Any] | None = None,
) -> ServingSpec:
    """The `ServingSpec` of a trained perception network, for `export_saved_model`.

    Args:
        model: The training network (`perception_model`; its raw head outputs).
        config: The `PerceptionConfig` it was built with.
        class_names: Detection class names, in class id order.
        mask_names: Segmentation class names, in id order (None without segmentation).
        examples: A few encoded images (PNG/JPEG bytes, e.g. a run's test frames): each
            becomes a one-image warmup request, and all of them one batched request
            (sizes may differ, which exercises the mask padding).
        metadata: Merged over the driving defaults (the domain adds run and data).

    The expected outputs are the signature's own (`served_examples`): the graph is the
    only implementation of the letterboxing, so the export checks that the SavedModel
    loads in a fresh process and agrees with it.
    """
    if not examples:
        raise ValueError("perception_serving_spec needs at least one example image")
    module = PerceptionServing(model, config, class_names)
    signatures = module.signatures()
    encoded = [bytes(e) for e in examples]
    requests = [{"image_bytes": np.array([e], dtype=object)} for e in encoded]
    if len(encoded) > 1:
        requests.append({"image_bytes": np.array(encoded, dtype=object)})
    warmup, expected = served_examples(signatures["serving_default"], requests)
    outputs = ["image_size"]
    if config.detection:
        outputs += ["boxes", "scores", "classes", "labels", "num_detections"]
    if config.segmentation:
        outputs.append("mask")
    base = {
        "domain": "driving",
        "task": "perception",
        "class_names": list(class_names) if config.detection else [],
        "mask_names": list(mask_names or []) if config.segmentation else [],
        "image_size": list(module.image_size),
        "detection": config.detection,
        "segmentation": config.segmentation,
        "max_detections": config.max_detections,
        "score_threshold": config.score_threshold,
        "iou_threshold": config.iou_threshold,
        "input": "encoded PNG/JPEG images of any size (image_bytes), letterboxed in the "
        f"graph to {module.image_size[0]}x{module.image_size[1]} with grey {PAD_VALUE}; "
        "serving_images takes a uint8 (N, H, W, 3) batch",
        "outputs": outputs,
        "boxes": "xyxy in each input image's pixels, clipped; rows past num_detections are 0",
        "mask": "class ids in input pixels, zero-padded to the batch's largest image: "
        "crop mask[i, :image_size[i][0], :image_size[i][1]]",
        "resize": RESIZE_NOTE,
    }
    return ServingSpec(
        module=module,
        signatures=signatures,
        warmup=warmup,
        expected=expected,
        metadata={**base, **dict(metadata or {})},
    )
