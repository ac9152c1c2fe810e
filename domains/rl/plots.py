"""RL's plots: the learning curve and the spread of evaluation returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import plots
from shared.plots import plt


def learning_curve(
    history: list[dict[str, float]], path: Path, *, title: str, target: float | None = None
) -> Path:
    """Evaluation mean return (+/- std) and recent training return against env steps."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = np.array([row["step"] for row in history])
    if len(steps):
        mean = np.array([row["mean_return"] for row in history])
        std = np.array([row.get("std_return", 0.0) for row in history])
        ax.plot(steps, mean, "o-", label="evaluation (greedy)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        train = np.array([row.get("train_return", np.nan) for row in history])
        ax.plot(steps, train, ".--", label="training episodes (recent 100)")
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", label=f"target {target:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return plots.save(fig, path)


def return_histogram(returns: np.ndarray, path: Path, *, title: str) -> Path:
    """How the evaluation episodes' returns spread (a mean hides bimodal policies)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.hist(returns, bins=min(30, max(5, len(returns) // 3)), color="tab:blue", alpha=0.8)
    ax.axvline(float(np.mean(returns)), color="black", linestyle="--", label="mean")
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return plots.save(fig, path)
