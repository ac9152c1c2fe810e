"""Checks of a healthcare config that run before TensorFlow starts (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.errors import UserError
from shared.model_catalog import check_model


def check_npz_labels(path: Path) -> None:
    """Refuse multi-label archives (one column per finding) with a clear message."""
    if not path.is_file():
        return  # the shared loader names the problem
    try:
        with np.load(path, allow_pickle=False) as f:
            key = next((k for k in ("train_labels", "y_train") if k in f.files), None)
            shape = f[key].shape if key else None
    except Exception:  # unreadable: the shared loader reports it
        return
    if shape is not None and len(shape) == 2 and shape[1] > 1:
        raise UserError(
            f"{path}: labels have shape {shape}, one column per finding (multi-label, as "
            "ChestMNIST); healthcare classify takes one class per image"
        )


def check_classifier(name: str) -> None:
    """The model is a zoo classifier of images."""
    check_model(
        name,
        lambda kind, modalities: "image" in modalities and kind.endswith("classifier"),
        "healthcare --task classify",
    )
