"""The zoo's catalogue: every model's kind, input modalities and preset figures, readable
without Keras.

`shared.zoo` registers models with Keras builders, so reading its registry imports
TensorFlow (seconds, and C++ start-up lines on the console). A domain checks a config's
`model.name` before that, against this catalogue, and `deepfield zoo list` prints its
rows from it at once instead of building every model (about a minute):
`model_catalog.json`, generated from the registry by `python -m shared.model_catalog`
and kept equal to it by tests (tests/shared/zoo/test_zoo_list.py for the kinds,
tests/pipelines/test_cli_output.py for the figures), so it cannot silently drift.

Each entry's `preset` holds what `zoo list` shows: the model built at its paper's input
(`preset_arguments`), its weight layers, parameters and forward FLOPs per example.
Forward FLOPs are counted by TensorFlow's graph profiler (`tf.compat.v1.profiler`,
float_operation) on the model's inference function traced for one example: a
multiply-add counts 2, so ResNet-50 at 224x224 shows about 7.8 GFLOPs (3.9 GMACs).
Recurrent layers are traced unrolled for the count, so every time step is counted; ops
without a registered FLOP count (einsum, in attention scores and capsule routing) are
not included, which makes those models' figures a lower bound.
"""

from __future__ import annotations

import difflib
import gc
import json
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from shared.errors import UserError

CATALOG_FILE = Path(__file__).with_name("model_catalog.json")
# Models without a preset (registered with plain `MODELS.register`) are measured here.
SMALL_INPUT = ((32, 32, 3), 10)
PRESET_KEYS = ("input", "classes", "weight_layers", "parameters", "flops")


@cache
def entries() -> dict[str, dict]:
    """Model name -> {"kind": ..., "modalities": [...], "preset": {...}} (empty if the
    file is missing; `preset` only where the model has been measured)."""
    try:
        return json.loads(CATALOG_FILE.read_text())
    except (OSError, ValueError):
        return {}


def check_model(name: str, fits: Callable[[str, tuple[str, ...]], bool], user: str) -> None:
    """Refuse `name` unless it is a zoo model that `fits(kind, modalities)` for `user`.

    A name the catalogue does not know is left to the zoo itself (it may have been
    registered since the catalogue was written); an unknown name close to a known one
    is refused with the suggestion.
    """
    catalog = entries()
    if not catalog:
        return
    usable = [n for n, e in sorted(catalog.items()) if fits(e["kind"], tuple(e["modalities"]))]
    if name not in catalog:
        close = difflib.get_close_matches(name, list(catalog), n=3)
        if close:
            raise UserError(
                f"unknown model {name!r} (did you mean {', '.join(close)}?); "
                f"models {user} can train: {', '.join(usable)}"
            )
        return
    entry = catalog[name]
    if not fits(entry["kind"], tuple(entry["modalities"])):
        raise UserError(
            f"model {name!r} ({entry['kind']}) cannot be trained by {user}; "
            f"models that can: {', '.join(usable)}"
        )


def from_registry() -> dict[str, dict]:
    """The catalogue as the live registry says it (imports the zoo, so TensorFlow)."""
    from shared.zoo import MODELS, model_spec

    return {
        name: {"kind": model_spec(name).kind, "modalities": list(model_spec(name).modalities)}
        for name in MODELS.names()
    }


def preset(name: str) -> dict[str, Any] | None:
    """The stored figures of model `name` at its preset (see the module doc), or None."""
    entry = entries().get(name) or {}
    figures = entry.get("preset")
    return dict(figures) if isinstance(figures, dict) and set(PRESET_KEYS) <= set(figures) else None


# === Measuring (imports the zoo, so TensorFlow) ===
def preset_arguments(name: str) -> tuple[tuple[int, ...], int | None, dict[str, Any]]:
    """(input shape, classes, options) model `name` is listed at: its paper's preset."""
    from shared.zoo import model_spec

    spec = model_spec(name)
    if spec.preset_input is None:
        return SMALL_INPUT[0], SMALL_INPUT[1], {}
    return spec.preset_input, spec.preset_classes, dict(spec.preset_options)


def build_preset(name: str, input_shape=None, num_classes=None, **options: Any):
    """Model `name` at its preset, with any argument or option replaced."""
    from shared.zoo import build_model

    shape, classes, preset_options = preset_arguments(name)
    return build_model(
        name,
        input_shape=tuple(input_shape or shape),
        num_classes=num_classes or classes,
        **{**preset_options, **options},
    )


def forward_flops(model) -> int:
    """Floating-point operations of one forward pass on one example (see the module doc)."""
    import keras
    import tensorflow as tf

    recurrent = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.RNN)
    ]
    inputs = model.inputs if isinstance(model.inputs, list) else [model.inputs]
    if any(None in tuple(t.shape[1:]) for t in inputs):
        raise UserError(f"{model.name} has a variable-size input; FLOPs need a fixed shape")
    specs = [tf.TensorSpec((1, *t.shape[1:]), t.dtype) for t in inputs]
    structure = model._inputs_struct if hasattr(model, "_inputs_struct") else None

    @tf.autograph.experimental.do_not_convert
    def forward(*tensors):
        if isinstance(structure, dict):
            feed: Any = dict(zip(structure, tensors, strict=True))
        else:
            feed = list(tensors) if len(tensors) > 1 else tensors[0]
        return model(feed, training=False)

    saved = [layer.unroll for layer in recurrent]
    for layer in recurrent:
        layer.unroll = True  # a while-loop body would be counted once, not per step
    try:
        graph = tf.function(forward).get_concrete_function(*specs).graph
    finally:
        for layer, value in zip(recurrent, saved, strict=True):
            layer.unroll = value
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler warns about its own deprecated internals
    try:
        info = tf.compat.v1.profiler.profile(
            graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
        )
    finally:
        logger.setLevel(level)
    return int(info.total_float_ops)


def forward_model(model):
    """What one example runs through: a GAN's generator, any other model itself."""
    from shared.zoo import GAN

    return model.generator if isinstance(model, GAN) else model


def measure(name: str) -> dict[str, Any]:
    """Model `name` built at its preset and measured: the figures of its `preset` entry."""
    import keras

    from shared.zoo import count_weight_layers

    shape, classes, _ = preset_arguments(name)
    model = build_preset(name)
    try:
        return {
            "input": "x".join(map(str, shape)),
            "classes": classes,
            "weight_layers": count_weight_layers(model),
            "parameters": model.count_params(),
            "flops": forward_flops(forward_model(model)),
        }
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def write_catalog(names: list[str] | None = None) -> dict[str, dict]:
    """Regenerate model_catalog.json from the registry: every model's kind and modalities,
    and the preset figures of `names` (default: every model; the others keep theirs)."""
    catalog = from_registry()
    old = entries()
    for name, entry in catalog.items():
        if names is None or name in names:
            print(f"measuring {name}", file=sys.stderr, flush=True)
            entry["preset"] = measure(name)
        elif name in old and "preset" in old[name]:
            entry["preset"] = old[name]["preset"]
    CATALOG_FILE.write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n")
    entries.cache_clear()
    return catalog


if __name__ == "__main__":
    # python -m shared.model_catalog [NAME...]: every model, or only NAMEs re-measured.
    written = write_catalog(sys.argv[1:] or None)
    print(f"wrote {CATALOG_FILE} ({len(written)} models)")
