"""Classification metrics from predicted probabilities, shared by run and export evaluation."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Cross-entropy loss, accuracy and macro F1 of `probabilities` (N x classes)."""
    probabilities = np.asarray(probabilities, np.float64)
    predicted = probabilities.argmax(axis=1)
    clipped = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return {
        "loss": float(-np.mean(np.log(clipped))),
        "accuracy": float(np.mean(predicted == labels)),
        "f1": float(f1_score(labels, predicted, average="macro")),
    }
