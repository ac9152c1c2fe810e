"""Image data sources: one module per spec scheme, all registered in `SOURCES`.

`base` holds what they share (Split, ImageData, the registries), `arrays` and `pixels` the
conversions, `load` the entry point that cuts missing splits with the one seeded splitter;
`builtin`, `npz`, `idx`, `folder` and `tfds` each read one kind of source.
"""

from shared.data.sources import builtin, folder, idx, npz, tfds  # noqa: F401  (registration)
from shared.data.sources.base import BUILTINS, SOURCES, SPLIT_NAMES, ImageData, Loaded, Split
from shared.data.sources.idx import read_idx
from shared.data.sources.load import (
    describe,
    image_data_from_arrays,
    image_data_from_splits,
    load_configured,
    load_image_data,
)
from shared.data.sources.pixels import fit_channels, resize_uint8

__all__ = [
    "BUILTINS",
    "SOURCES",
    "SPLIT_NAMES",
    "ImageData",
    "Loaded",
    "Split",
    "describe",
    "fit_channels",
    "image_data_from_arrays",
    "image_data_from_splits",
    "load_configured",
    "load_image_data",
    "read_idx",
    "resize_uint8",
]
