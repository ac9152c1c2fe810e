"""Segmentation pictures: true and predicted masks over the image (the middle slice of a
volume, or the slice with most foreground), in display orientation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from domains.healthcare import seg_data, seg_metrics
from domains.healthcare.seg_data import INPUT_SCALE, SegCase
from shared import plots


def display_slice(case: SegCase, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """A 2D view of a case: the image itself, or the axial slice with most foreground."""
    if case.image.ndim == 2:
        return case.image, case.mask, mask
    k = int(np.argmax((case.mask > 0).sum(axis=(0, 1)))) if case.mask is not None else 0
    return case.image[..., k], case.mask[..., k], mask[..., k]


def display_axes(case: SegCase) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """How to show a 2D view: phantom images are already (anterior->posterior, patient
    right->left) rows and columns; canonical RAS slices (i: left->right, j: posterior->
    anterior) are transposed and drawn with anterior at the top."""
    if case.id.startswith("phantom_"):
        return (lambda a: a), "upper"
    return (lambda a: a.T), "lower"


def overlays(
    cases: list[SegCase],
    preds: list[np.ndarray],
    names: list[str],
    contract: dict[str, Any],
    path: Path,
    limit: int,
) -> Path:
    """Each case's image (in its window, or min-max for MR) with the true mask (top) and
    the prediction (bottom) overlaid, Dice in the title."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    shown = list(range(min(limit, len(cases))))
    orient, origin = display_axes(cases[0])
    colours = ListedColormap([(0, 0, 0, 0), *[plt.cm.tab10(i % 10) for i in range(len(names) - 1)]])
    fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 5.4), squeeze=False)
    for column, i in enumerate(shown):
        image, true, pred = display_slice(cases[i], preds[i])
        view = seg_data.normalize(image, contract["normalize"], contract["window_spec"])
        low, high = (
            (0, INPUT_SCALE) if contract["normalize"] == "window" else (view.min(), view.max())
        )
        score = np.mean(
            [seg_metrics.dice(preds[i] == c, cases[i].mask == c) for c in range(1, len(names))]
        )
        pairs = ((true, "true"), (pred, f"predicted, Dice {score:.2f}"))
        for row, (labels, title) in enumerate(pairs):
            ax = axes[row, column]
            ax.imshow(orient(view), cmap="gray", vmin=low, vmax=high, origin=origin)
            ax.imshow(
                orient(labels),
                cmap=colours,
                vmin=0,
                vmax=len(names) - 1,
                alpha=0.45,
                interpolation="nearest",
                origin=origin,
            )
            ax.set_title(f"{cases[i].id}\n{title}", fontsize=7)
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(c)) for c in range(1, len(names))]
    fig.legend(handles, names[1:], loc="lower center", ncol=len(names) - 1, fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return plots.save(fig, path)
