"""Data loading shared by the domains: spec parsing, image sources, pipelines, augmentation."""

from shared.data.augment import build_augmentation
from shared.data.image_pipeline import image_dataset
from shared.data.image_sources import ImageData, Split, describe, load_image_data
from shared.data.spec import parse_spec

__all__ = [
    "ImageData",
    "Split",
    "build_augmentation",
    "describe",
    "image_dataset",
    "load_image_data",
    "parse_spec",
]
