"""`deepfield zoo list | show`: the architecture zoo at a glance."""

from __future__ import annotations

from typing import Any

from shared.config import parse_override
from shared.errors import UserError

# The input each model is shown at: the paper's for the presets, a small image otherwise.
PAPER_INPUTS: dict[str, tuple[tuple[int, int, int], int]] = {
    "resnet18": ((224, 224, 3), 1000),
    "resnet34": ((224, 224, 3), 1000),
    "resnet50": ((224, 224, 3), 1000),
}
SMALL_INPUT = ((32, 32, 3), 10)


def _build(name: str, input_shape=None, num_classes=None, **options: Any):
    from shared.zoo import build_model

    shape, classes = PAPER_INPUTS.get(name, SMALL_INPUT)
    return build_model(
        name,
        input_shape=tuple(input_shape or shape),
        num_classes=num_classes or classes,
        **options,
    )


def list_models() -> str:
    """A table of every registered model: weight layers and parameters at its input."""
    from shared.zoo import MODELS, count_weight_layers

    header = f"{'model':<12} {'input':<14} {'classes':>7} {'weight layers':>14} {'parameters':>14}"
    lines = [header, "-" * len(header)]
    for name in MODELS.names():
        shape, classes = PAPER_INPUTS.get(name, SMALL_INPUT)
        model = _build(name)
        lines.append(
            f"{name:<12} {'x'.join(map(str, shape)):<14} {classes:>7} "
            f"{count_weight_layers(model):>14} {model.count_params():>14,}"
        )
    return "\n".join(lines)


def show_model(name: str, overrides: list[str]) -> str:
    """A model's description and Keras summary, with `--set` options applied."""
    from shared.zoo import model_info

    options: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 1:
            raise UserError(f"zoo show takes plain option names, got {'.'.join(path)!r}")
        options[path[0]] = value
    model = _build(name, **options)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    return model_info(name) + "\n\n" + "\n".join(lines)
