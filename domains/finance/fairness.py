"""Group fairness for a protected attribute: approval rates, true-positive rates, AUC.

The attribute is kept out of the model's features by default (`fairness.use_as_feature`)
and used only here. Groups are its categories, its integer codes (`sex` coded 1/2: at
most `MAX_GROUPS` distinct integers), or, for a number (age), the rows below and
at-or-above `fairness.cut`; rows without a value form a `missing` group. The groups are
checked when the data is loaded, before training. A positive decision (1) means decline
/ flag, so the approval rate is the share of rows with decision 0; the true-positive rate
is the share of actual positives (defaults, frauds) the model flags.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import UserError

MAX_GROUPS = 10  # a numeric attribute with at most this many integers is codes
MISSING_GROUP = "missing"


def groups_of(values: pd.Series, cut: float | None) -> np.ndarray:
    """Each row's group (see the module docstring); a UserError if the column cannot be grouped."""
    name = values.name
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    missing = values.isna().to_numpy()
    if cut is not None:
        if not numeric:
            shown = ", ".join(sorted(values.dropna().astype(str).unique()[:5]))
            raise UserError(
                f"fairness.cut applies to a numeric attribute; {name!r} holds categories "
                f"({shown}): drop fairness.cut"
            )
        groups = np.where(values.to_numpy() < cut, f"below_{cut:g}", f"{cut:g}_or_more")
    elif numeric:
        numbers = values.to_numpy(dtype="float64")[~missing]
        distinct = np.unique(numbers)
        if len(distinct) > MAX_GROUPS or not np.all(distinct == np.rint(distinct)):
            raise UserError(
                f"fairness.protected={name!r} is numeric with {len(distinct)} distinct values: "
                f"set fairness.cut to group it (e.g. 25 for age)"
            )
        groups = np.full(len(values), MISSING_GROUP, dtype=object)
        groups[~missing] = [str(int(v)) for v in numbers]
    else:
        groups = values.astype(str).to_numpy(dtype=object)
    return np.where(missing, MISSING_GROUP, groups).astype(str)


def metric_key(text: str) -> str:
    """snake_case for a metrics.json key built from a column or group name."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "x"


def fairness_report(
    values: pd.Series,
    labels: np.ndarray,
    probabilities: np.ndarray,
    decisions: np.ndarray,
    cut: float | None,
) -> dict[str, Any]:
    """Per-group rates and the largest differences between groups."""
    from sklearn.metrics import roc_auc_score

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
    """The report as flat metrics.json entries, under snake_case keys."""
    attr = metric_key(report["attribute"])
    flat = {
        "fairness_approval_rate_diff": report["approval_rate_diff"],
        "fairness_tpr_diff": report["tpr_diff"],
        "fairness_roc_auc_diff": report["roc_auc_diff"],
    }
    for group, values in report["groups"].items():
        for key in ("approval_rate", "tpr", "roc_auc"):
            flat[f"{key}_{attr}_{metric_key(group)}"] = values[key]
    return flat
