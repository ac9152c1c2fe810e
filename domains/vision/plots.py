"""Vision's own plots: misclassified examples and Grad-CAM overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import plots
from shared.explain import gradcam_heatmaps, overlay_heatmap


def misclassified(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    path: Path,
    limit: int = 32,
) -> Path:
    """The most confidently wrong test images, with true and predicted class."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:limit]
    titles = [
        f"{class_names[labels[i]]}->{class_names[predicted[i]]} ({probabilities[i, predicted[i]]:.2f})"
        for i in wrong
    ]
    note = f"{len(np.flatnonzero(predicted != labels))} of {len(labels)} misclassified"
    if len(wrong) == 0:
        return plots.image_grid(images[:1], ["no errors"], path, suptitle=note)
    return plots.image_grid(images[wrong], titles, path, suptitle=note)


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
