"""Multi-task models: one shared trunk, one named head per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras

from shared.errors import UserError


def trunk_with_heads(
    trunk: keras.Model,
    heads: Mapping[str, keras.Layer | Sequence[keras.Layer]],
    name: str = "multi_task",
) -> keras.Model:
    """A functional model whose outputs are a dict {task: head(trunk(inputs))}.

    Each head is a layer or a list of layers applied in order; its output is named after
    the task, so `compile(loss={task: ...}, loss_weights={task: w})` and the predictions
    dict use the same names. The trunk's weights receive every task's gradients.
    """
    if not heads:
        raise UserError("a multi-task model needs at least one head")
    inputs = trunk.inputs if len(trunk.inputs) > 1 else trunk.inputs[0]
    features = trunk(inputs)
    outputs = {}
    for task, head in heads.items():
        layers = [head] if isinstance(head, keras.Layer) else list(head)
        x = features
        for layer in layers:
            x = layer(x)
        outputs[task] = keras.layers.Identity(name=task)(x)
    return keras.Model(inputs, outputs, name=name)
