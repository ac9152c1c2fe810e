"""`deepfield zoo list | show`: the architecture zoo at a glance.

Forward FLOPs are counted by TensorFlow's graph profiler
(`tf.compat.v1.profiler`, float_operation) on the model's inference function traced
for one example: a multiply-add counts 2, so ResNet-50 at 224x224 shows about 7.8
GFLOPs (3.9 GMACs). Recurrent layers are traced unrolled for the count, so every time
step is counted; ops without a registered FLOP count (einsum, in attention scores
and capsule routing) are not included, which makes those models' figures a lower bound.
"""

from __future__ import annotations

import gc
from typing import Any

from shared.config import parse_override
from shared.errors import UserError

# Models without a preset (registered with plain `MODELS.register`) are shown here.
SMALL_INPUT = ((32, 32, 3), 10)


def preset_arguments(name: str) -> tuple[tuple[int, ...], int | None, dict[str, Any]]:
    """(input shape, classes, options) model `name` is listed at: its paper's preset."""
    from shared.zoo import model_spec

    spec = model_spec(name)
    if spec.preset_input is None:
        return SMALL_INPUT[0], SMALL_INPUT[1], {}
    return spec.preset_input, spec.preset_classes, dict(spec.preset_options)


def _build(name: str, input_shape=None, num_classes=None, **options: Any):
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


def _human(count: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(int(count))


def model_row(name: str) -> dict[str, Any]:
    """One listing row: the model built at its preset and measured."""
    import keras

    from shared.zoo import count_weight_layers, model_spec

    shape, classes, _ = preset_arguments(name)
    model = _build(name)
    try:
        row = {
            "model": name,
            "kind": model_spec(name).kind,
            "modality": model_spec(name).modality,
            "input": "x".join(map(str, shape)),
            "classes": classes,
            "weight_layers": count_weight_layers(model),
            "parameters": model.count_params(),
            "flops": forward_flops(_forward_model(model)),
        }
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()
    return row


def _forward_model(model):
    """What one example runs through: a GAN's generator, any other model itself."""
    from shared.zoo import GAN

    return model.generator if isinstance(model, GAN) else model


def list_models(names: list[str] | None = None) -> str:
    """A table of the registered models (or `names`): kind, preset input, classes, weight
    layers, parameters and forward FLOPs per example at that input."""
    from shared.zoo import MODELS

    header = (
        f"{'model':<18} {'kind':<20} {'input':<13} {'classes':>7} {'weight layers':>13} "
        f"{'parameters':>13} {'FLOPs':>9}"
    )
    lines = [header, "-" * len(header)]
    for name in names or MODELS.names():
        row = model_row(name)
        lines.append(
            f"{name:<18} {row['kind']:<20} {row['input']:<13} {row['classes'] or '-':>7} "
            f"{row['weight_layers']:>13} {row['parameters']:>13,} {_human(row['flops']):>9}"
        )
    return "\n".join(lines)


def show_model(name: str, overrides: list[str]) -> str:
    """A model's description and Keras summary, with `--set` options applied."""
    from shared.zoo import GAN, model_info

    options: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 1:
            raise UserError(f"zoo show takes plain option names, got {'.'.join(path)!r}")
        options[path[0]] = value
    model = _build(name, **options)
    lines: list[str] = []
    parts = [model.generator, model.discriminator] if isinstance(model, GAN) else [model]
    for part in parts:
        part.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    return model_info(name) + "\n\n" + "\n".join(lines)
