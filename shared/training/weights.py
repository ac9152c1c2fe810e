"""Per-class loss weights shared by the domains that classify (nlp, healthcare)."""

from __future__ import annotations

import numpy as np


def class_weights(labels: np.ndarray, classes: int, how: str) -> np.ndarray | None:
    """A loss weight per class (None for `none`): `balanced` is scikit-learn's
    n / (classes * count), so every class carries the same total weight; `sqrt` its
    square root. Keras's `class_weight=` argument does the same inside `fit`, but not
    for a distributed dataset, so the weights ride along as a third dataset column."""
    if how == "none":
        return None
    counts = np.maximum(np.bincount(labels, minlength=classes), 1)
    weights = len(labels) / (classes * counts)
    return (np.sqrt(weights) if how == "sqrt" else weights).astype("float32")
