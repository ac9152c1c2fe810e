"""Drift monitoring: population stability index (PSI) of the score and each feature.

PSI = sum over bins of (actual - expected) * ln(actual / expected), where `expected` is
the share of training rows in a bin and `actual` the share of new rows. Numbers use the
training deciles as bins, categories their training categories (plus one bin for
unseen ones). Usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above
0.25 a significant shift that calls for a look (and likely retraining).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FLOOR = 1e-4  # an empty bin would make the logarithm infinite
UNSEEN = "__unseen__"


def band(psi: float) -> str:
    if psi < 0.1:
        return "stable"
    return "moderate" if psi <= 0.25 else "significant"


def numeric_reference(values: np.ndarray, bins: int = 10) -> dict[str, Any]:
    edges = np.unique(
        np.quantile(np.asarray(values, np.float64), np.linspace(0, 1, bins + 1)[1:-1])
    )
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "expected": _numeric_shares(values, edges).tolist(),
    }


def _numeric_shares(values, edges) -> np.ndarray:
    which = np.searchsorted(np.asarray(edges), np.asarray(values, np.float64), side="right")
    return np.bincount(which, minlength=len(edges) + 1) / max(1, len(values))


def categorical_reference(values: pd.Series) -> dict[str, Any]:
    shares = values.astype(str).value_counts(normalize=True)
    return {
        "kind": "categorical",
        "categories": shares.index.tolist(),
        "expected": shares.tolist() + [0.0],
    }


def shares(reference: dict[str, Any], values) -> np.ndarray:
    if reference["kind"] == "numeric":
        return _numeric_shares(values, reference["edges"])
    known = {c: i for i, c in enumerate(reference["categories"])}
    which = [known.get(str(v), len(known)) for v in values]
    return np.bincount(which, minlength=len(known) + 1) / max(1, len(which))


def psi(expected, actual) -> float:
    e = np.maximum(np.asarray(expected, np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def build_reference(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], scores: np.ndarray
) -> dict[str, Any]:
    """What monitoring compares against: the training split's bins and shares."""
    return {
        "score": numeric_reference(scores),
        "features": {
            **{c: numeric_reference(frame[c].to_numpy()) for c in numeric},
            **{c: categorical_reference(frame[c]) for c in categorical},
        },
    }


def compare(reference: dict[str, Any], frame: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """PSI of the score and every feature of `frame` against the reference, with bands."""
    score_psi = psi(reference["score"]["expected"], shares(reference["score"], scores))
    features = {}
    for name, ref in reference["features"].items():
        value = psi(ref["expected"], shares(ref, frame[name].to_numpy()))
        features[name] = {"psi": value, "band": band(value)}
    ordered = dict(sorted(features.items(), key=lambda kv: -kv[1]["psi"]))
    return {
        "rows": int(len(frame)),
        "score_psi": score_psi,
        "score_band": band(score_psi),
        "features": ordered,
        "shifted": [n for n, v in ordered.items() if v["band"] == "significant"],
    }
