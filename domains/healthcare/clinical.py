"""Classification metrics as a clinical reader asks for them, and the operating point.

- `roc_auc` and `accuracy` as MedMNIST's evaluator computes them: binary AUC on the
  second column's probability (the same number for either class), multi-class the mean
  of one-vs-rest AUCs; accuracy at the arg-max.
- `sensitivity` and `specificity` (binary) at a threshold on the positive class's
  probability, chosen on the validation split: Youden's J (max sensitivity +
  specificity - 1), the highest threshold reaching a target sensitivity, or fixed.
- `loss`, `brier` and `ece` of the calibrated probabilities (binary: the positive class's
  probability; multi-class: the top-label confidence), with the uncalibrated figures
  beside them (`*_uncalibrated`), so the calibration's effect is on record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from shared.calibration import expected_calibration_error, reliability_curve
from shared.metrics import classification_metrics


def roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """MedMNIST's AUC: binary on column 1, multi-class the mean one-vs-rest AUC; NaN
    when a split holds a single class (no ROC exists)."""
    labels = np.asarray(labels).astype(int)
    k = probabilities.shape[1]
    present = np.unique(labels)
    if len(present) < 2:
        return float("nan")
    if k == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    aucs = [roc_auc_score(labels == c, probabilities[:, c]) for c in range(k) if c in present]
    return float(np.mean(aucs))


def choose_threshold(
    labels: np.ndarray, scores: np.ndarray, rule: str, target_sensitivity: float, value: float
) -> float:
    """The threshold on `scores` (positive when score >= threshold) for `rule`."""
    if rule == "fixed" or len(np.unique(labels)) < 2:
        return float(value)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    finite = np.isfinite(thresholds)
    fpr, tpr, thresholds = fpr[finite], tpr[finite], thresholds[finite]
    if rule == "youden":
        best = int(np.argmax(tpr - fpr))
    else:  # the first (highest) threshold whose sensitivity reaches the target
        reaching = np.flatnonzero(tpr >= target_sensitivity)
        best = int(reaching[0]) if len(reaching) else len(thresholds) - 1
    return float(np.clip(thresholds[best], 1e-6, 1.0))


def sensitivity_specificity(
    labels: np.ndarray, scores: np.ndarray, threshold: float
) -> tuple[float, float]:
    decided = scores >= threshold
    positive = labels == 1
    sensitivity = float(decided[positive].mean()) if positive.any() else float("nan")
    specificity = float((~decided[~positive]).mean()) if (~positive).any() else float("nan")
    return sensitivity, specificity


def calibration_scores(
    labels: np.ndarray, probabilities: np.ndarray, positive: int, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """(outcomes, probabilities) whose agreement calibration is about: the positive
    class's probability (binary) or the top-label confidence (multi-class)."""
    if probabilities.shape[1] == 2:
        return (labels == positive).astype(float), probabilities[:, positive]
    top = probabilities.argmax(axis=1)
    return (top == labels).astype(float), probabilities.max(axis=1)


def report(
    labels: np.ndarray,
    raw: np.ndarray,
    calibrated: np.ndarray,
    *,
    positive: int,
    threshold: float | None,
    bins: int,
) -> dict[str, Any]:
    """Flat metrics for metrics.json from raw and calibrated probabilities (N x K)."""
    labels = np.asarray(labels).astype(int)
    # AUC, accuracy and F1 of the model's own scores (what MedMNIST's evaluator reads;
    # isotonic steps would tie scores); the loss of the calibrated probabilities.
    metrics: dict[str, Any] = {
        **classification_metrics(labels, raw),
        "roc_auc": roc_auc(labels, raw),
        "loss": classification_metrics(labels, calibrated)["loss"],
        "loss_uncalibrated": classification_metrics(labels, raw)["loss"],
    }
    for name, probabilities in (("", calibrated), ("_uncalibrated", raw)):
        outcomes, confidence = calibration_scores(labels, probabilities, positive, bins)
        metrics[f"brier{name}"] = float(np.mean((confidence - outcomes) ** 2))
        metrics[f"ece{name}"] = expected_calibration_error(outcomes, confidence, bins)
    if calibrated.shape[1] == 2 and threshold is not None:
        scores = calibrated[:, positive]
        sensitivity, specificity = sensitivity_specificity(
            (labels == positive).astype(int), scores, threshold
        )
        metrics.update(sensitivity=sensitivity, specificity=specificity, threshold=threshold)
    return metrics


def reliability(
    labels: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, positive: int, bins: int
) -> dict[str, np.ndarray]:
    """Reliability curves before and after calibration, for the plot."""
    curves = {}
    for name, probabilities in (("uncalibrated", raw), ("calibrated", calibrated)):
        outcomes, confidence = calibration_scores(labels, probabilities, positive, bins)
        curves[name] = reliability_curve(outcomes, confidence, bins)
    return curves
