"""Build zoo models by name, with their options checked before anything is built.

A builder is a function `builder(input_shape, num_classes, *, option=default, ...)`
registered in `MODELS`; its keyword-only parameters are its options, so the valid
option names and their defaults come from the signature and cannot drift from it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

import keras

from shared.errors import UserError
from shared.registry import Registry
from shared.zoo.classifier import check_input_shape, check_num_classes

MODELS = Registry("model")

# Layer types counted by `count_weight_layers`: the layers that "depth" counts in
# architecture names (ResNet-50 has 49 convs + 4 projections + 1 dense).
WEIGHT_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)


def model_options(name: str) -> dict[str, Any]:
    """Option names of model `name` mapped to their defaults, in signature order."""
    builder = MODELS.get(name)
    return {
        param.name: param.default
        for param in inspect.signature(builder).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }


def build_model(
    name: str, *, input_shape: Sequence[int], num_classes: int, **options: Any
) -> keras.Model:
    """Build zoo model `name` for `input_shape` (H, W, C) images and `num_classes` classes.

    Raises:
        UserError: unknown model name, unknown option name (the message lists the
            valid ones), or an invalid option value, input shape or class count.
    """
    builder = MODELS.get(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        hints = [
            f"{opt!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(opt, valid, n=1))
            else repr(opt)
            for opt in unknown
        ]
        raise UserError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(hints)} for model "
            f"{name!r}; valid options: {', '.join(valid) or '(none)'}"
        )
    return builder(check_input_shape(input_shape), check_num_classes(num_classes), **options)


def model_info(name: str) -> str:
    """One-paragraph description of model `name` followed by its options and defaults."""
    builder = MODELS.get(name)
    doc = inspect.getdoc(builder) or ""
    summary = " ".join(doc.split("\n\n")[0].split())
    options = ", ".join(f"{opt}={_show(default)}" for opt, default in model_options(name).items())
    return f"{name}: {summary}\noptions: {options or '(none)'}"


def count_weight_layers(model: keras.Layer) -> int:
    """Number of Conv/Dense layers in `model`, counting inside nested models and blocks."""
    # Keras has no public recursive walk over sublayers; `_flatten_layers` is what
    # Keras' own summary and weight tracking use, and it de-duplicates shared layers.
    return sum(
        isinstance(layer, WEIGHT_LAYER_TYPES)
        for layer in model._flatten_layers(include_self=False, recursive=True)
    )


def _show(value: Any) -> str:
    """Defaults as a user would write them in YAML (tuples as lists)."""
    if isinstance(value, tuple):
        value = list(value)
    return repr(value) if isinstance(value, str) else str(value)


__all__: list[str] = [
    "MODELS",
    "WEIGHT_LAYER_TYPES",
    "build_model",
    "count_weight_layers",
    "model_info",
    "model_options",
]
