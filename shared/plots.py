"""Plots every classification task draws: training curves, a confusion matrix, ROC
curves and reliability diagrams.

matplotlib with the Agg backend, so plots render on machines without a screen.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def training_curves(history: list[dict[str, float]], path: Path) -> Path:
    """Loss and every other metric per epoch, train beside validation."""
    names = [
        k for k in (history[0] if history else {}) if k != "epoch" and not k.startswith("val_")
    ]
    names = [n for n in names if n not in ("learning_rate",)] or ["loss"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(history)]
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(epochs, [row.get(name, np.nan) for row in history], "o-", label="train")
        if any(f"val_{name}" in row for row in history):
            ax.plot(epochs, [row.get(f"val_{name}", np.nan) for row in history], "o-", label="val")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save(fig, path)


def confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Counts with row-normalised colour, so small classes stay readable."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 12 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 20:
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("confusion matrix")
    return save(fig, path)


def image_grid(
    images: np.ndarray,
    titles: list[str],
    path: Path,
    *,
    columns: int = 8,
    suptitle: str | None = None,
) -> Path:
    """A grid of images (uint8 or float 0..255) with a title under each."""
    count = max(1, len(images))
    rows = int(np.ceil(count / columns))
    cols = min(columns, count)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        ax.set_title(title, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save(fig, path)


def reliability_diagram(curves: dict[str, np.ndarray], path: Path, *, title: str) -> Path:
    """Observed rate against mean predicted probability per bin, one line per curve
    (rows of `shared.calibration.reliability_curve`), beside the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "--", c="grey", label="perfect")
    for name, curve in curves.items():
        if len(curve):
            ax.plot(curve[:, 0], curve[:, 1], "o-", label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    *,
    title: str,
    point: tuple[float, float] | None = None,
) -> Path:
    """ROC curves ((false-positive rates, true-positive rates) by name), with an
    operating point (1 - specificity, sensitivity) marked when given."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "--", c="grey")
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=name)
    if point is not None:
        ax.plot([point[0]], [point[1]], "ko", label="threshold")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save(fig, path)
