"""Data loading shared by the domains: spec parsing, sources, splitting, pipelines.

Names are imported on first use, so `shared.data.spec`, `shared.data.splits` and
`shared.data.table` stay free of TensorFlow: a domain can read and check its data before
TensorFlow starts.
"""

from __future__ import annotations

import importlib
from typing import Any

from shared.data.spec import parse_spec

_LAZY = {
    "ImageData": "shared.data.sources",
    "Split": "shared.data.sources",
    "describe": "shared.data.sources",
    "load_image_data": "shared.data.sources",
    "load_configured": "shared.data.sources",
    "image_data_from_arrays": "shared.data.sources",
    "build_augmentation": "shared.data.augment",
    "image_dataset": "shared.data.image_pipeline",
    "split_indices": "shared.data.splits",
    "read_table": "shared.data.table",
}

__all__ = ["parse_spec", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
