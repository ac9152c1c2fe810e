"""Imbalanced binary metrics, the cost-based threshold, and the confusion matrix at it."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from domains.finance.config import CostConfig, MetricsConfig
from shared.calibration import expected_calibration_error


def total_cost(labels: np.ndarray, decisions: np.ndarray, cost: CostConfig) -> float:
    tp = np.sum((decisions == 1) & (labels == 1))
    fp = np.sum((decisions == 1) & (labels == 0))
    fn = np.sum((decisions == 0) & (labels == 1))
    return float(cost.true_positive * tp + cost.false_positive * fp + cost.false_negative * fn)


def cost_curve(labels: np.ndarray, probabilities: np.ndarray, cost: CostConfig, points: int = 200):
    """(thresholds, total cost at each): flag every row with probability >= threshold."""
    candidates = np.unique(np.quantile(probabilities, np.linspace(0, 1, points)))
    candidates = np.unique(np.r_[candidates, np.linspace(0.01, 0.99, 99)])
    costs = np.array(
        [total_cost(labels, (probabilities >= t).astype(int), cost) for t in candidates]
    )
    return candidates, costs


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray, cost: CostConfig) -> float:
    """The configured threshold, or the one with the lowest total cost on these rows."""
    if cost.threshold is not None:
        return float(cost.threshold)
    thresholds, costs = cost_curve(labels, probabilities, cost)
    return float(thresholds[int(np.argmin(costs))])


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_target: float) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = fpr <= fpr_target
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def recall_at_fpr_key(fpr: float) -> str:
    """The metrics.json key of recall at `fpr`, in snake_case: 0.01 -> recall_at_fpr_1pct,
    0.005 -> recall_at_fpr_0_5pct."""
    percent = f"{100 * fpr:.6f}".rstrip("0").rstrip(".")
    return f"recall_at_fpr_{percent.replace('.', '_')}pct"


def precision_at_k(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, kind="stable")[: min(k, len(scores))]
    return float(labels[top].mean()) if len(top) else float("nan")


def binary_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    cost: CostConfig,
    config: MetricsConfig,
) -> dict[str, Any]:
    """Flat metrics for metrics.json (DESIGN.md names first)."""
    labels = np.asarray(labels).astype(int)
    p = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1 - 1e-7)
    decisions = (p >= threshold).astype(int)
    tp = int(np.sum((decisions == 1) & (labels == 1)))
    fp = int(np.sum((decisions == 1) & (labels == 0)))
    fn = int(np.sum((decisions == 0) & (labels == 1)))
    tn = int(np.sum((decisions == 0) & (labels == 0)))
    both = len(set(labels.tolist())) == 2
    fpr_curve, tpr_curve, _ = roc_curve(labels, p) if both else (np.zeros(1), np.zeros(1), None)
    roc = float(roc_auc_score(labels, p)) if both else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
        "roc_auc": roc,
        "pr_auc": float(average_precision_score(labels, p)) if both else float("nan"),
        "brier": float(np.mean((p - labels) ** 2)),
        "ece": expected_calibration_error(labels, p),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy": float(np.mean(decisions == labels)),
        "precision": precision,
        "recall": recall,
        "gini": 2 * roc - 1,
        "ks": float(np.max(tpr_curve - fpr_curve)),
        recall_at_fpr_key(config.fpr): recall_at_fpr(labels, p, config.fpr)
        if both
        else float("nan"),
        f"precision_at_{config.top_k}": precision_at_k(labels, p, config.top_k),
        "threshold": float(threshold),
        "cost": total_cost(labels, decisions, cost),
        "cost_per_row": total_cost(labels, decisions, cost) / max(1, len(labels)),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
        "positive_rate": float(labels.mean()),
    }


def recall_by_pattern(
    patterns: np.ndarray, labels: np.ndarray, decisions: np.ndarray
) -> dict[str, float]:
    """Share of each synthetic fraud pattern's rows that were flagged."""
    out = {}
    for name in sorted(set(patterns[labels == 1])):
        inside = (patterns == name) & (labels == 1)
        out[f"recall_{name}"] = float(decisions[inside].mean())
    return out
