"""Grad-CAM (Selvaraju et al. 2017) for the zoo's classifiers, and the image grid of
inputs beside their overlays that vision and healthcare write.

The zoo's classifiers share one layout (`preprocess` -> `backbone` -> `pool` ->
`dropout` -> `predictions`), so the last convolutional feature map is the backbone's
output and the gradient of a class score with respect to it is one tape away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib import colormaps

from shared import plots


def gradcam_heatmaps(
    model, images: np.ndarray, class_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps in [0, 1] at image resolution, and the class each one explains.

    `class_ids` defaults to the predicted class of each image.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    cam, class_ids = gradcam_maps(model, images, class_ids)
    cam = tf.image.resize(cam[..., None], images.shape[1:3], method="bilinear")[..., 0]
    return cam.numpy(), class_ids


def gradcam_maps(
    model, images: tf.Tensor, class_ids: np.ndarray | None = None
) -> tuple[tf.Tensor, np.ndarray]:
    """Grad-CAM maps in [0, 1] at the feature map's resolution (2D for images, 3D for a
    volume classifier's 5-D feature map), and the class each one explains."""
    head = [model.get_layer(name) for name in ("pool", "dropout", "predictions")]
    with tf.GradientTape() as tape:
        features = model.get_layer("backbone")(model.get_layer("preprocess")(images))
        tape.watch(features)
        x = features
        for layer in head:
            x = layer(x, training=False)
        probabilities = tf.cast(x, tf.float32)
        if class_ids is None:
            class_ids = tf.argmax(probabilities, axis=-1).numpy()
        scores = tf.gather(probabilities, class_ids, axis=1, batch_dims=1)
    grads = tf.cast(tape.gradient(scores, features), tf.float32)
    features = tf.cast(features, tf.float32)
    spatial = tuple(range(1, len(features.shape) - 1))
    weights = tf.reduce_mean(grads, axis=spatial, keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    cam = cam / (tf.reduce_max(cam, axis=spatial, keepdims=True) + 1e-8)
    return cam, np.asarray(class_ids)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (0..255, grey or RGB) with the heatmap blended over it, as uint8 RGB."""
    image = np.asarray(image, np.float32)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    colour = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255.0
    return np.clip((1 - alpha) * image + alpha * colour, 0, 255).astype(np.uint8)


def gradcam_grid(
    model, images: np.ndarray, class_names: list[str], path: Path, labels: np.ndarray | None = None
) -> Path:
    """Each image beside its Grad-CAM overlay for the predicted class."""
    heatmaps, class_ids = gradcam_heatmaps(model, images)
    tiles, titles = [], []
    for i, (image, heat) in enumerate(zip(images, heatmaps, strict=True)):
        rgb = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
        truth = f" (true {class_names[labels[i]]})" if labels is not None else ""
        tiles += [rgb, overlay_heatmap(image, heat)]
        titles += [f"input{truth}", f"Grad-CAM: {class_names[class_ids[i]]}"]
    return plots.image_grid(np.stack(tiles), titles, path, columns=8, suptitle="Grad-CAM")
