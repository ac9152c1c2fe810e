"""Grad-CAM for a detection (Selvaraju et al. 2017, applied to a one-stage detector).

The explained detection is each frame's top-scoring location (the one NMS keeps first).
Its class logit is differentiated with respect to the FPN level that location belongs
to, and the gradient-weighted level map is shown over the frame with the detection's
box. `shared.explain`'s Grad-CAM reads a classifier's `backbone` output; a detector's
evidence lives in the pyramid level of the detection, hence this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from domains.driving.detection_set import Frame
from domains.driving.letterbox import boxes_from_letterbox
from domains.driving.pipeline import load_sample
from domains.driving.plots import panel_grid
from shared import plots
from shared.explain.gradcam import overlay_heatmap
from shared.plots import plt
from shared.zoo.fcos import Levels, PerceptionConfig


def _probe(model: keras.Model) -> keras.Model:
    """The training network with its FPN levels as extra outputs."""
    levels = model.get_layer("fpn").output
    levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
    heads = [model.output[name] for name in ("class_logits", "centerness_logits", "box_ltrb")]
    return keras.Model(model.input, [*levels, *heads])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@tf.function(reduce_retracing=True)
def _cam_graph(probe, x, level, levels, loc, class_id):
    with tf.GradientTape() as tape:
        outputs = probe(x, training=False)
        feature = outputs[level]
        target = outputs[levels][0, loc, class_id]
    grads = tape.gradient(target, feature)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature, axis=-1))[0]
    return cam / (tf.reduce_max(cam) + 1e-8)


def _cam(probe, x, level: int, levels: int, loc: int, class_id: int) -> tf.Tensor:
    """The Grad-CAM map of class `class_id` at location `loc` on pyramid level `level`.

    In a tf.function: eager Conv2D filter backprop aborted the process ("free(): invalid
    next size") with oneDNN on TF 2.21's CPU build; the graph's kernels do not."""
    return _cam_graph(probe, x, level, levels, tf.constant(loc), tf.constant(class_id))


def detection_gradcam(
    probe: keras.Model, perception: PerceptionConfig, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(heatmap in [0, 1] at input size, the top detection's box in input pixels, its
    class id, its score) for one letterboxed image."""
    levels = Levels(tuple(perception.image_size), tuple(perception.strides))
    centres, strides, _ = levels.locations()
    pyramid = [s for s in (8, 16, 32) if s <= max(perception.strides)]
    x = tf.convert_to_tensor(image[None].astype(np.float32))
    outputs = probe(x, training=False)
    cls, ctr, ltrb = outputs[len(pyramid) :]
    scores = np.sqrt(_sigmoid(np.asarray(cls[0])) * _sigmoid(np.asarray(ctr[0])))  # (N, C)
    loc, class_id = np.unravel_index(int(np.argmax(scores)), scores.shape)
    level = pyramid.index(int(strides[loc]))
    cam = _cam(probe, x, level, len(pyramid), int(loc), int(class_id))
    heat = tf.image.resize(cam[..., None], perception.image_size, method="bilinear")[..., 0]
    cx, cy = centres[loc]
    left, top, right, bottom = np.asarray(ltrb[0, loc])
    box = np.array([cx - left, cy - top, cx + right, cy + bottom], np.float32)
    return heat.numpy(), box, int(class_id), float(scores[loc, class_id])


def detection_gradcam_grid(
    model: keras.Model,
    perception: PerceptionConfig,
    frames: Sequence[Frame],
    class_names: Sequence[str],
    path: Path,
) -> Path:
    """One panel per frame: its Grad-CAM in the frame's pixels and the explained box."""
    probe = _probe(model)
    fig, axes = panel_grid(len(frames))
    for i, frame in enumerate(frames):
        sample = load_sample(frame, perception.image_size, with_mask=False)
        heat, box, class_id, score = detection_gradcam(probe, perception, sample.image)
        lb = sample.letterbox
        nh, nw = round(lb.height * lb.scale_y), round(lb.width * lb.scale_x)
        crop = heat[lb.pad_y : lb.pad_y + nh, lb.pad_x : lb.pad_x + nw]
        heat_frame = np.asarray(
            Image.fromarray(crop.astype(np.float32)).resize((frame.width, frame.height))
        )
        with Image.open(frame.image_path) as im:
            image = np.asarray(im.convert("RGB"))
        ax = axes[i]
        ax.imshow(overlay_heatmap(image, heat_frame))
        x1, y1, x2, y2 = boxes_from_letterbox(box[None], lb)[0]
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1.5))
        ax.set_title(
            f"{Path(frame.image_path).name}: {class_names[class_id]} {score:.2f}", fontsize=8
        )
    fig.suptitle("Grad-CAM of each frame's top detection (its FPN level)")
    return plots.save(fig, path)
