"""`npz:PATH`: NumPy archives with Keras-style (x_train, y_train, ...) or MedMNIST keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.data.sources.arrays import array_source
from shared.data.sources.base import SOURCES, Loaded, LoadOptions
from shared.errors import UserError

_NPZ_KEYS = {
    "train": [("x_train", "y_train"), ("train_images", "train_labels")],
    "validation": [
        ("x_val", "y_val"),
        ("x_validation", "y_validation"),
        ("val_images", "val_labels"),
        ("validation_images", "validation_labels"),
    ],
    "test": [("x_test", "y_test"), ("test_images", "test_labels")],
}


@SOURCES.register("npz")
def _load_npz(rest: str, opts: LoadOptions) -> Loaded:
    """x_train/y_train (+ x_val/x_validation, x_test) or MedMNIST's train_images/... keys."""
    path = Path(rest).expanduser()
    if not path.is_file():
        raise UserError(f"npz file {path} does not exist" + _is_dir_hint(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as e:  # zipfile, pickle and format errors all mean "not a usable npz"
        raise UserError(f"cannot read {path} as .npz: {e}") from e
    parts = {}
    for split, candidates in _NPZ_KEYS.items():
        for x_key, y_key in candidates:
            if x_key in arrays or y_key in arrays:
                if x_key not in arrays or y_key not in arrays:
                    raise UserError(
                        f"{path} has {x_key if x_key in arrays else y_key} but not "
                        f"{y_key if x_key in arrays else x_key}"
                    )
                parts[split] = (arrays[x_key], arrays[y_key])
                break
    if "train" not in parts:
        raise UserError(
            f"{path} has no x_train/y_train (or train_images/train_labels) arrays; "
            f"keys found: {', '.join(sorted(arrays)) or 'none'}"
        )
    names = None
    if "class_names" in arrays:
        names = [str(v) for v in np.asarray(arrays["class_names"]).reshape(-1)]
    return array_source(parts, opts, str(path), names)


def _is_dir_hint(path: Path) -> str:
    return " (it is a folder; use folder: for image folders)" if path.is_dir() else ""
