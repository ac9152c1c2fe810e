"""The driving domain's plots: frames with true and predicted boxes over the predicted
road / lane mask, and per-class precision-recall curves (COCO's interpolated curves at
IoU 0.5 and 0.75)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from domains.driving.detection_metrics import CocoResult, Detections
from domains.driving.detection_set import Frame
from shared import plots
from shared.plots import plt

# Mask class id -> RGB tint (background untinted): road blue, lane markings yellow.
MASK_COLOURS = {1: (40, 90, 255), 2: (255, 220, 0)}
SHOWN_SCORE = 0.3  # predicted boxes drawn from this score up


def mask_overlay(image: np.ndarray, mask: np.ndarray | None, alpha: float = 0.35) -> np.ndarray:
    """The RGB frame with each mask class tinted in."""
    out = image.astype(np.float32)
    if mask is not None:
        for k, colour in MASK_COLOURS.items():
            where = mask == k
            out[where] = (1 - alpha) * out[where] + alpha * np.asarray(colour, np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def panel_grid(n: int):
    """A figure of `n` frame panels, two per row, axes off; (figure, flat axes)."""
    n = max(1, n)
    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def frames_grid(
    frames: Sequence[Frame],
    detections: Sequence[Detections] | None,
    masks: Sequence[np.ndarray],
    class_names: Sequence[str],
    path: Path,
) -> Path:
    """One panel per frame: true boxes green, predictions (score >= 0.3) red with their
    label and score, over the predicted mask."""
    fig, axes = panel_grid(len(frames))
    for i, frame in enumerate(frames):
        ax = axes[i]
        with Image.open(frame.image_path) as im:
            image = np.asarray(im.convert("RGB"))
        ax.imshow(mask_overlay(image, masks[i] if i < len(masks) else None))
        for x1, y1, x2, y2 in frame.boxes:
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1.2))
        if detections is not None:
            det = detections[i]
            for (x1, y1, x2, y2), s, c in zip(det.boxes, det.scores, det.classes, strict=True):
                if s < SHOWN_SCORE:
                    continue
                ax.add_patch(
                    plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=1.0)
                )
                ax.text(
                    x1,
                    y1,
                    f"{class_names[int(c)]} {s:.2f}",
                    color="white",
                    fontsize=6,
                    bbox={"facecolor": "red", "alpha": 0.6, "pad": 0.5, "lw": 0},
                )
        ax.set_title(Path(frame.image_path).name, fontsize=8)
    fig.suptitle("true boxes (green), predicted (red), predicted road / lane tint")
    return plots.save(fig, path)


def precision_recall(coco: CocoResult, path: Path) -> Path:
    """Interpolated precision against recall per class, at IoU 0.5 (solid) and 0.75
    (dashed); the legend gives each class's AP50."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    recall = np.linspace(0.0, 1.0, coco.precision.shape[1])
    for k, name in enumerate(coco.class_names):
        p50 = coco.precision[0, :, k]
        if (p50 < 0).all():
            continue  # no ground truth of this class
        (line,) = ax.plot(recall, np.clip(p50, 0, 1), label=f"{name} AP50 {p50.mean():.3f}")
        ax.plot(recall, np.clip(coco.precision[5, :, k], 0, 1), ls="--", color=line.get_color())
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("precision-recall (solid IoU 0.5, dashed 0.75)")
    ax.legend(loc="lower left", fontsize=8)
    return plots.save(fig, path)
