"""The perception network for TFLite: dense decoding in the network, NMS by the caller.

`tflite_model`, `convert_tflite`, `export_tflite` and `PerceptionTFLite`: the network
with dense decoding but no non-maximum suppression (see `tflite_model`);
`decode_detections` and `nms` are the numpy post-processing a caller applies, and give
the in-graph detector's detections. Measured on simulated frames (tiny network, float32):
TFLite vs Keras at most 8e-6 px on boxes and 2e-7 on scores, masks identical; the tests
hold them to 1e-3 px and 1e-5.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from domains.driving.letterbox import PAD_VALUE
from domains.driving.model import MASK_OUTPUT, Levels, PerceptionConfig
from shared.export import tflite as tflite_export
from shared.zoo.fcos import dense_scores_and_boxes


@keras.saving.register_keras_serializable(package="deepfield")
class DenseDetections(keras.layers.Layer):
    """Raw FCOS head outputs -> every location's box and class scores, no NMS: the
    same scoring and boxes as `model.FCOSDecode` (sqrt(sigmoid(class) *
    sigmoid(centerness)); location -+ distances clipped to the input), in Keras ops that
    convert to TFLite builtins."""

    def __init__(self, image_size: tuple[int, int], strides: tuple[int, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.strides = tuple(int(s) for s in strides)
        centres, _, _ = Levels(self.image_size, self.strides).locations()
        self._centres = np.asarray(centres, np.float32)

    def call(self, class_logits, box_ltrb, centerness_logits):
        scores, corners = dense_scores_and_boxes(
            class_logits, box_ltrb, centerness_logits, self._centres, self.image_size
        )
        return {"boxes": ops.stack(corners, axis=-1), "scores": scores}

    def compute_output_spec(self, class_logits, box_ltrb, centerness_logits):
        batch, n, c = class_logits.shape
        return {
            "boxes": keras.KerasTensor((batch, n, 4), "float32"),
            "scores": keras.KerasTensor((batch, n, c), "float32"),
        }

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "image_size": self.image_size, "strides": self.strides}


@keras.saving.register_keras_serializable(package="deepfield")
class MaskIds(keras.layers.Layer):
    """Mask logits -> class ids, uint8, with `tf.argmax` (TFLite's ARG_MAX): the zoo's
    `MaskArgmax` uses `keras.ops.argmax`, whose NaN/-0.0 handling needs a BitwiseAnd
    that TFLite has no builtin for. Same ids for finite logits."""

    def call(self, logits):
        return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], "uint8")


def tflite_model(model: keras.Model, config: PerceptionConfig) -> keras.Model:
    """The network as TFLite takes it: `image` float32 (1, H, W, 3), 0..255, already
    letterboxed to `config.image_size` (grey 114, `letterbox.letterbox_image`) ->

    - `boxes` (1, L, 4) float32: xyxy in letterboxed pixels, one per location L (every
      cell of every pyramid level, `Levels` order), clipped to the input;
    - `scores` (1, L, classes) float32: sqrt(sigmoid(class) * sigmoid(centerness));
    - `mask` (1, H, W) uint8 class ids in letterboxed pixels (segmentation on).

    No NMS: apply `decode_detections(boxes[0], scores[0], config)` (top-k, score
    threshold, per-class NMS, best `max_detections`), then
    `letterbox.boxes_from_letterbox` for the image's own pixels.
    """
    h, w = config.image_size
    image = keras.Input((h, w, 3), batch_size=1, name="image")
    raw = model(image, training=False)
    outputs: dict[str, Any] = {}
    if config.detection:
        outputs.update(
            DenseDetections(config.image_size, config.strides, name="dense")(
                raw["class_logits"], raw["box_ltrb"], raw["centerness_logits"]
            )
        )
    if config.segmentation:
        outputs["mask"] = MaskIds(name="mask_ids")(raw[MASK_OUTPUT])
    return keras.Model(image, outputs, name="perception_tflite")


def convert_tflite(model: keras.Model, config: PerceptionConfig, quantize: str = "none") -> bytes:
    """`tflite_model(model, config)` as a TFLite flatbuffer (`shared.export.tflite.convert`;
    quantize "none", "dynamic" or "float16": int8 activations would need calibration)."""
    h, w = config.image_size
    return tflite_export.convert(tflite_model(model, config), (h, w, 3), quantize)


def export_tflite(
    model: keras.Model,
    config: PerceptionConfig,
    path: str | Path,
    class_names: Sequence[str],
    mask_names: Sequence[str] | None = None,
    quantize: str = "none",
) -> dict[str, Any]:
    """Write `path` (.tflite) and `path.json` (what a caller needs: input size, output
    names and shapes, thresholds for `decode_detections`, class and mask names)."""
    path = Path(path)
    flatbuffer = convert_tflite(model, config, quantize)
    runner = PerceptionTFLite(flatbuffer)
    report = {
        "path": str(path),
        "quantize": quantize,
        "size_bytes": len(flatbuffer),
        "input": {
            "name": "image",
            "shape": [1, *config.image_size, 3],
            "dtype": "float32",
            "values": f"0..255 RGB, letterboxed with grey {PAD_VALUE}",
        },
        "outputs": runner.output_shapes,
        "nms": "not in the model: decode_detections(boxes[0], scores[0], config)",
        "score_threshold": config.score_threshold,
        "iou_threshold": config.iou_threshold,
        "max_detections": config.max_detections,
        "pre_nms_top_k": config.pre_nms_top_k,
        "class_names": list(class_names),
        "mask_names": list(mask_names or []),
    }
    tflite_export.write(path, flatbuffer)
    tflite_export.write(path.with_name(path.name + ".json"), json.dumps(report, indent=2) + "\n")
    return report


class PerceptionTFLite:
    """Runs a `convert_tflite` flatbuffer (or file) one image at a time, by output name."""

    def __init__(self, model: str | Path | bytes):
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's move-to-LiteRT notice
            self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_output_details()
        self.output_shapes = {
            name: {"shape": [int(d) for d in d_["shape"]], "dtype": np.dtype(d_["dtype"]).name}
            for name, d_ in sorted(details.items())
        }

    def predict(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """(H, W, 3) or (1, H, W, 3) letterboxed image -> outputs (batch axis dropped)."""
        batch = np.asarray(image, np.float32).reshape(1, *np.shape(image)[-3:])
        return {name: value[0] for name, value in self.runner(image=batch).items()}


# === Post-processing for TFLite callers (numpy) ===
def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index
    first); a box goes when its IoU with a kept one is above `iou_threshold`, as in
    `tf.image.non_max_suppression`."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    x1, y1 = np.minimum(boxes[:, 0], boxes[:, 2]), np.minimum(boxes[:, 1], boxes[:, 3])
    x2, y2 = np.maximum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 1], boxes[:, 3])
    area = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def decode_detections(
    boxes: np.ndarray, scores: np.ndarray, config: PerceptionConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's dense TFLite outputs -> (boxes (K, 4) xyxy letterboxed pixels, scores
    (K,), classes (K,) int32), best first, K <= `config.max_detections`.

    What the in-graph detector (`tf.image.combined_non_max_suppression` after
    `pre_nms_top_k`) does: the `pre_nms_top_k` locations of highest class score; per
    class, scores above `score_threshold` and NMS at `iou_threshold`, at most
    `max_detections`; then the best `max_detections` over all classes.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(len(boxes), -1)
    k = min(config.pre_nms_top_k, len(boxes))
    top = np.argsort(-scores.max(axis=1), kind="stable")[:k]
    boxes, scores = boxes[top], scores[top]
    found_boxes, found_scores, found_classes = [], [], []
    for c in range(scores.shape[1]):
        candidates = np.nonzero(scores[:, c] > config.score_threshold)[0]
        kept = candidates[
            nms(boxes[candidates], scores[candidates, c], config.iou_threshold)[
                : config.max_detections
            ]
        ]
        found_boxes.append(boxes[kept])
        found_scores.append(scores[kept, c])
        found_classes.append(np.full(len(kept), c, np.int32))
    all_scores = np.concatenate(found_scores)
    best = np.argsort(-all_scores, kind="stable")[: config.max_detections]
    return (
        np.concatenate(found_boxes)[best].reshape(-1, 4),
        all_scores[best],
        np.concatenate(found_classes)[best],
    )
