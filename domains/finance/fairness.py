"""Group fairness for a protected attribute: approval rates, true-positive rates, AUC.

The attribute is kept out of the model's features by default (`fairness.use_as_feature`)
and used only here. Groups are its categories, or, for a number (age), the rows below
and at-or-above `fairness.cut`. A positive decision (1) means decline / flag, so the
approval rate is the share of rows with decision 0; the true-positive rate is the share
of actual positives (defaults, frauds) the model flags.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from shared.errors import UserError


def groups_of(values: pd.Series, cut: float | None) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values):
        if cut is None:
            raise UserError(
                f"fairness.protected={values.name!r} is numeric: set fairness.cut (e.g. 25 for age)"
            )
        return np.where(values.to_numpy() < cut, f"below_{cut:g}", f"{cut:g}_or_more")
    return values.astype(str).to_numpy()


def fairness_report(
    values: pd.Series,
    labels: np.ndarray,
    probabilities: np.ndarray,
    decisions: np.ndarray,
    cut: float | None,
) -> dict[str, Any]:
    """Per-group rates and the largest differences between groups."""
    groups = groups_of(values, cut)
    per_group = {}
    for group in sorted(set(groups)):
        inside = groups == group
        y, d = labels[inside], decisions[inside]
        per_group[group] = {
            "count": int(inside.sum()),
            "approval_rate": float(np.mean(d == 0)),
            "tpr": float(np.mean(d[y == 1] == 1)) if (y == 1).any() else float("nan"),
            "roc_auc": float(roc_auc_score(y, probabilities[inside]))
            if len(set(y)) == 2
            else float("nan"),
        }

    def spread(key: str) -> float:
        values_ = [g[key] for g in per_group.values() if not np.isnan(g[key])]
        return float(max(values_) - min(values_)) if len(values_) > 1 else 0.0

    return {
        "attribute": str(values.name),
        "groups": per_group,
        "approval_rate_diff": spread("approval_rate"),
        "tpr_diff": spread("tpr"),
        "roc_auc_diff": spread("roc_auc"),
    }


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report as flat metrics.json entries."""
    attr = report["attribute"]
    flat = {
        "fairness_approval_rate_diff": report["approval_rate_diff"],
        "fairness_tpr_diff": report["tpr_diff"],
        "fairness_roc_auc_diff": report["roc_auc_diff"],
    }
    for group, values in report["groups"].items():
        for key in ("approval_rate", "tpr", "roc_auc"):
            flat[f"{key}_{attr}_{group}"] = values[key]
    return flat
