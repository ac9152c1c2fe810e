"""Vision's own plots: misclassified examples (Grad-CAM grids are shared.explain's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import plots


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
