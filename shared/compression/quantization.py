"""Keras 3's own post-training quantization (`model.quantize`), with a report of what it did.

Keras 3.15 quantizes Dense, EinsumDense and Embedding layers (int8 and int4 weights with
per-channel scales, or float8 training-time scaling); convolutions are left in float.
The report names the layers it changed and the weight layers it did not, so a CNN's
user learns that its convolutions need another route (a TFLite export's quantization).
"""

from __future__ import annotations

import warnings

import keras

from shared.compression import QUANTIZE_MODES as MODES
from shared.compression.pruning import PRUNABLE_TYPES

COVERED = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)


def quantization_mode(layer: keras.Layer) -> str | None:
    """The layer's quantization mode (None: float)."""
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "quantization_mode", None)


def _leaf_layers(model: keras.Layer) -> list[keras.Layer]:
    seen, leaves = set(), []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if id(layer) not in seen and len(list(layer._flatten_layers())) == 1:
            seen.add(id(layer))
            leaves.append(layer)
    return leaves


def quantize(model: keras.Model, mode: str) -> dict[str, list[str]]:
    """Quantize `model` in place; returns {"changed": [...], "float": [...]}: the layers
    now in `mode`, and the weight layers (convolutions, ...) still in float."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; use {', '.join(MODES)}")
    before = {id(layer): quantization_mode(layer) for layer in _leaf_layers(model)}
    with warnings.catch_warnings():
        # Keras warns once per layer type it cannot quantize; the report says it instead.
        warnings.simplefilter("ignore")
        # Only the layer types Keras quantizes: asking every layer would stop at a text
        # model's StringLookup/TextVectorization ("isn't yet built" after a reload).
        model.quantize(mode, filters=lambda layer: isinstance(layer, COVERED))
    changed, left = [], []
    for layer in _leaf_layers(model):
        now = quantization_mode(layer)
        if now is not None and now != before.get(id(layer)):
            changed.append(layer.name)
        elif now is None and isinstance(layer, (*PRUNABLE_TYPES, *COVERED)):
            left.append(layer.name)
    return {"changed": changed, "float": left}
