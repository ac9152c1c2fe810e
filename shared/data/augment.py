"""Image augmentation from Keras preprocessing layers, configured by names and magnitudes.

    build_augmentation({"translate": 0.1, "rotate": 0.05, "zoom": 0.1})
    build_augmentation(["translate", "contrast"])          # default magnitudes
    build_augmentation({"rotate": {"factor": 0.1, "fill_mode": "reflect"}})  # layer kwargs

Magnitudes follow the Keras layers: translate and zoom are fractions of the image size,
rotate a fraction of a full turn, contrast a factor, flip a mode ("horizontal", "vertical",
"horizontal_and_vertical"); true means the default magnitude. Flips are off unless asked
for, because flipping changes the meaning of digits and text. Layers work on batches of
float images on the 0..255 scale, which is what `image_dataset` emits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from shared.errors import UserError

DEFAULT_AUGMENTATION: dict[str, Any] = {"translate": 0.1, "rotate": 0.05, "zoom": 0.1}
DEFAULT_MAGNITUDES: dict[str, Any] = {
    "translate": 0.1,
    "rotate": 0.05,
    "zoom": 0.1,
    "flip": "horizontal",
    "contrast": 0.2,
}
_ALIASES = {"translation": "translate", "rotation": "rotate", "random_flip": "flip"}
# Geometric layers fill uncovered pixels with black, which matches digit backgrounds and is
# the usual choice for photos too; pass fill_mode in a kwargs dict to change it.
_FILL = {"fill_mode": "constant", "fill_value": 0.0}
_FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _layer(name: str, value: Any, seed: int | None) -> keras.layers.Layer:
    """One Keras preprocessing layer for `name`, from a magnitude or a kwargs dict."""
    kwargs = dict(value) if isinstance(value, Mapping) else {}
    if name == "flip":
        mode = kwargs.pop("mode", "horizontal") if isinstance(value, Mapping) else value
        if mode not in _FLIP_MODES:  # RandomFlip accepts any string and then never flips
            raise UserError(f"augmentation 'flip' must be one of {', '.join(_FLIP_MODES)}")
        return keras.layers.RandomFlip(mode=mode, seed=seed, **kwargs)
    if not isinstance(value, Mapping):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UserError(f"augmentation {name!r} needs a non-negative number; got {value!r}")
        kwargs["factor"] = value
    factor = kwargs.pop("factor", DEFAULT_MAGNITUDES[name])
    if name == "translate":
        return keras.layers.RandomTranslation(factor, factor, seed=seed, **{**_FILL, **kwargs})
    if name == "rotate":
        return keras.layers.RandomRotation(factor, seed=seed, **{**_FILL, **kwargs})
    if name == "zoom":
        return keras.layers.RandomZoom(factor, seed=seed, **{**_FILL, **kwargs})
    return keras.layers.RandomContrast(factor, value_range=(0, 255), seed=seed, **kwargs)


def build_augmentation(
    config: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.Sequential | None:
    """A `keras.Sequential` of random layers, or None when `config` enables nothing.

    `config` None means `DEFAULT_AUGMENTATION` (translate, rotate, zoom; no flips). A list
    names layers at their default magnitudes; a dict maps names to magnitudes, true (the
    default magnitude) or layer kwargs, where 0, false or null leave that layer out. Each
    layer gets its own seed derived from `seed`.
    """
    if config is None:
        config = DEFAULT_AUGMENTATION
    if isinstance(config, str):
        config = [config]
    if not isinstance(config, Mapping):
        config = dict.fromkeys(config, True)
    layers = []
    for raw_name, value in config.items():
        key = _ALIASES.get(str(raw_name).lower(), str(raw_name).lower())
        if key not in DEFAULT_MAGNITUDES:
            raise UserError(
                f"unknown augmentation {raw_name!r}; known: {', '.join(DEFAULT_MAGNITUDES)}"
            )
        if value is None or value is False or (not isinstance(value, Mapping | str) and value == 0):
            continue
        if value is True:
            value = DEFAULT_MAGNITUDES[key]
        layer_seed = None if seed is None else seed + len(layers)
        try:
            layers.append(_layer(key, value, layer_seed))
        except (TypeError, ValueError) as e:  # Keras rejects bad factors and kwargs
            raise UserError(f"bad augmentation {raw_name!r}={value!r}: {e}") from e
    return keras.Sequential(layers, name=name) if layers else None
