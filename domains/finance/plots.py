"""The plots a fraud or credit analyst looks at (matplotlib, Agg backend via shared.plots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from shared.plots import plt, save


def pr_roc_curves(labels, probabilities, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    precision, recall, _ = precision_recall_curve(labels, probabilities)
    left.plot(recall, precision)
    left.axhline(np.mean(labels), ls="--", c="grey", label="no skill")
    left.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    left.legend()
    fpr, tpr, _ = roc_curve(labels, probabilities)
    right.plot(fpr, tpr)
    right.plot([0, 1], [0, 1], "--", c="grey")
    right.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def score_distributions(
    labels, values, path: Path, *, xlabel: str, threshold: float | None = None, log: bool = True
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.linspace(np.min(values), np.max(values), 40) if len(values) else 10
    for cls, name in ((0, "negative"), (1, "positive")):
        ax.hist(
            values[labels == cls],
            bins=bins,
            alpha=0.55,
            density=True,
            label=f"{name} ({int(np.sum(labels == cls))})",
        )
    if threshold is not None:
        ax.axvline(threshold, c="k", ls="--", label="threshold")
    ax.set(xlabel=xlabel, ylabel="density", title="scores by class")
    if log:
        ax.set_yscale("log")
    ax.legend()
    return save(fig, path)


def cost_vs_threshold(thresholds, costs, chosen: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(thresholds, costs)
    ax.axvline(chosen, c="k", ls="--", label=f"chosen {chosen:.3f}")
    ax.set(
        xlabel="threshold (flag if probability >= threshold)",
        ylabel="total cost (validation)",
        title="cost vs threshold",
    )
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def bar_chart(
    values: dict[str, float], path: Path, *, title: str, xlabel: str, lines: tuple[float, ...] = ()
) -> Path:
    names = list(values)[:25][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1.5))
    ax.barh(names, [values[n] for n in names])
    for x in lines:
        ax.axvline(x, c="k", ls="--", lw=0.8)
    ax.set(xlabel=xlabel, title=title)
    return save(fig, path)


def fairness_groups(report: dict, path: Path) -> Path:
    groups = list(report["groups"])
    keys = ("approval_rate", "tpr", "roc_auc")
    fig, ax = plt.subplots(figsize=(6, 3.8))
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        ax.bar(
            np.arange(len(keys)) + i * width,
            [report["groups"][group][k] for k in keys],
            width,
            label=group,
        )
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys)
    ax.set(ylim=(0, 1), title=f"by {report['attribute']}")
    ax.legend()
    return save(fig, path)


def psi_report(report: dict, path: Path) -> Path:
    values = {"SCORE": report["score_psi"], **{k: v["psi"] for k, v in report["features"].items()}}
    return bar_chart(
        values,
        path,
        title="population stability index",
        xlabel="PSI (0.1 / 0.25 bands)",
        lines=(0.1, 0.25),
    )
