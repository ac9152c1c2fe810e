"""Classification metrics from predicted probabilities: one definition for every domain
that classifies (vision, nlp), for runs and for exported models alike."""

from __future__ import annotations

import re

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


def slug(name: object) -> str:
    """A class name as a metrics.json key suffix (snake_case: `dice_liver`, `recall_spam`)."""
    text = re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
    return text or "class"


def per_class_metrics(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> dict[str, float]:
    """precision_<class> and recall_<class> for every class (keys made snake_case)."""
    from sklearn.metrics import precision_recall_fscore_support

    predicted = np.asarray(probabilities).argmax(axis=1)
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predicted, labels=range(len(class_names)), zero_division=0
    )
    out: dict[str, float] = {}
    for i, name in enumerate(class_names):
        out[f"precision_{slug(name)}"] = float(precision[i])
        out[f"recall_{slug(name)}"] = float(recall[i])
    return out
