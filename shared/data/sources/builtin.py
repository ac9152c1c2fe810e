"""`builtin:NAME`: image data the project ships or generates, usable offline."""

from __future__ import annotations

import numpy as np

from shared.data.sources.arrays import array_source
from shared.data.sources.base import BUILTINS, SOURCES, Loaded, LoadOptions


@BUILTINS.register("digits")
def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 1797 8x8 handwritten digits, pixels 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target, [str(i) for i in range(10)]


@SOURCES.register("builtin")
def _load_builtin(rest: str, opts: LoadOptions) -> Loaded:
    images, labels, class_names = BUILTINS.get(rest)()
    return array_source({"train": (images, labels)}, opts, f"builtin:{rest}", class_names)
