"""The head every zoo classifier shares, plus the option checks their builders use.

One assembly means every classifier has the same top-level layout, which other code
relies on (transfer learning freezes "backbone", Grad-CAM re-runs the head by name,
exports feed raw pixels because "preprocess" is inside the model):

    image (float32, raw 0..255) -> preprocess -> backbone -> pool -> dropout -> predictions
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import keras

from shared.errors import UserError

# The names other modules look layers up by; part of the contract, do not rename.
PREPROCESS = "preprocess"
BACKBONE = "backbone"
POOL = "pool"
DROPOUT = "dropout"
PREDICTIONS = "predictions"
HEAD_LAYER_NAMES = (PREPROCESS, BACKBONE, POOL, DROPOUT, PREDICTIONS)


def assemble_classifier(
    backbone: keras.Model,
    input_shape: Sequence[int],
    num_classes: int,
    dropout: float,
    name: str,
    pool: keras.Layer | None = None,
) -> keras.Model:
    """Wrap `backbone` (normalised image -> 4-D feature map, or a volume -> 5-D one) into a
    softmax classifier.

    Args:
        backbone: Functional model named "backbone" whose input is the image scaled to
            0..1 and whose output is its last conv feature map.
        input_shape: (H, W, C) of the raw image, or (D, H, W, C) of a raw volume.
        num_classes: Number of softmax outputs.
        dropout: Dropout rate before the final Dense layer.
        name: Name of the returned model (the zoo name, e.g. "resnet50").
        pool: The "pool" layer, feature map -> feature vector. Default global average
            pooling (3-D for a volume's feature map); AlexNet and VGG pass their paper's
            flatten + fully connected layers (a Sequential named "pool"), which keeps the
            layout (and Grad-CAM, which re-runs pool -> dropout -> predictions) while
            matching their counts.

    Returns:
        A functional model taking float32 raw pixels (0..255).
    """
    if backbone.name != BACKBONE:
        raise ValueError(f"the backbone model must be named {BACKBONE!r}, got {backbone.name!r}")
    if len(backbone.output.shape) not in (4, 5):
        raise ValueError(
            f"the backbone must output a 4-D (or 5-D) feature map, got {backbone.output.shape}"
        )

    # === Layers ===
    preprocess = keras.layers.Rescaling(1.0 / 255, name=PREPROCESS)
    if pool is None:
        volume = len(backbone.output.shape) == 5
        pool_class = (
            keras.layers.GlobalAveragePooling3D if volume else keras.layers.GlobalAveragePooling2D
        )
        pool = pool_class(name=POOL)
    elif pool.name != POOL:
        raise ValueError(f"the pool layer must be named {POOL!r}, got {pool.name!r}")
    drop = keras.layers.Dropout(dropout, name=DROPOUT)
    # float32 even under a mixed precision policy: softmax in float16 can underflow
    # to exact zeros, and the loss takes their log.
    predictions = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=PREDICTIONS
    )

    # === Functional Model ===
    image = keras.Input(shape=tuple(input_shape), dtype="float32", name="image")
    x = preprocess(image)
    x = backbone(x)
    x = pool(x)
    x = drop(x)
    outputs = predictions(x)
    return keras.Model(image, outputs, name=name)


# Option checks. Options arrive from YAML files and the command line, so a wrong value
# is the user's mistake: each check raises UserError naming the option.


def check_shape(input_shape: Any) -> tuple[int, ...]:
    """Return `input_shape` as a tuple of 1 to 4 positive ints, or raise UserError.

    The rank is the model's business: vectors `(features,)`, token sequences
    `(seq_len,)`, sequences of vectors `(time, features)`, images `(H, W, C)` and
    volumes `(D, H, W, C)` all pass here; each builder then checks the rank it needs.
    """
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if not 1 <= len(dims) <= 4 or not all(_is_integer(d) for d in dims):
        raise UserError(f"input_shape must be 1 to 4 integers, got {input_shape!r}")
    if min(int(d) for d in dims) < 1:
        raise UserError(f"input_shape dimensions must be positive, got {input_shape!r}")
    return tuple(int(d) for d in dims)


def check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """Return `input_shape` as an (H, W, C) tuple of positive ints, or raise UserError."""
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if len(dims) != 3 or not all(_is_integer(d) for d in dims):
        raise UserError(
            f"input_shape must be (height, width, channels) integers, got {input_shape!r}"
        )
    height, width, channels = (int(d) for d in dims)
    if min(height, width, channels) < 1:
        raise UserError(f"input_shape dimensions must be positive, got {input_shape!r}")
    return height, width, channels


def check_image_classifier(input_shape: Any, num_classes: Any) -> tuple[tuple[int, int, int], int]:
    """The (H, W, C) shape and class count an image classifier builder needs."""
    if num_classes is None:
        raise UserError("this model is a classifier: num_classes is required")
    return check_input_shape(input_shape), check_num_classes(num_classes)


def check_num_classes(num_classes: Any) -> int:
    """Return `num_classes` as an int >= 2 (a softmax over one class is always 1)."""
    if not _is_integer(num_classes) or num_classes < 2:
        raise UserError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


def has_conv_backbone(model: keras.Model) -> bool:
    """Whether `model` has the layout above with a 4-D feature map (what Grad-CAM needs)."""
    names = {layer.name for layer in model.layers}
    if not set(HEAD_LAYER_NAMES) <= names:
        return False
    return len(model.get_layer(BACKBONE).output.shape) == 4


def check_int(option: str, value: Any, *, minimum: int = 1, choices: Sequence[int] = ()) -> int:
    """Return `value` if it is an int >= `minimum` (and in `choices`, if given)."""
    if not _is_integer(value):
        raise UserError(f"option {option!r} must be an integer, got {value!r}")
    value = int(value)
    if choices and value not in choices:
        raise UserError(
            f"option {option!r} must be one of {', '.join(map(str, choices))}, got {value}"
        )
    if value < minimum:
        raise UserError(f"option {option!r} must be >= {minimum}, got {value}")
    return value


def check_heads(hidden: Any, num_heads: Any) -> tuple[int, int]:
    """`hidden` and `num_heads` as ints, the width a multiple of the heads (a transformer
    splits its width evenly among them)."""
    hidden, num_heads = check_int("hidden", hidden), check_int("num_heads", num_heads)
    if hidden % num_heads:
        raise UserError(f"option 'hidden' ({hidden}) must be a multiple of num_heads ({num_heads})")
    return hidden, num_heads


def check_int_list(option: str, values: Any, *, allow_empty: bool = False) -> list[int]:
    """Return `values` (layer widths, filters) as a list of ints >= 1."""
    if isinstance(values, int | str) or not isinstance(values, Sequence):
        values = None
    if values is None or not (values or allow_empty):
        what = "a list" if allow_empty else "a non-empty list"
        raise UserError(f"option {option!r} must be {what} of integers, got {values!r}")
    return [check_int(option, v) for v in values]


def check_rate(option: str, value: Any) -> float:
    """Return `value` as a float in [0, 1), the valid range of a dropout rate."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise UserError(f"option {option!r} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_positive(option: str, value: Any) -> float:
    """Return `value` as a float > 0 (width multipliers, scales)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UserError(f"option {option!r} must be a number > 0, got {value!r}")
    return float(value)


def check_min_side(model: str, input_shape: Sequence[int], minimum: int, why: str) -> None:
    """Raise UserError if the spatial sides of `input_shape` are below `minimum`."""
    sides = tuple(input_shape[:-1])
    if min(sides) < minimum:
        raise UserError(
            f"{model} needs inputs of at least {minimum}x{minimum} ({why}); got "
            f"{'x'.join(map(str, input_shape))}; resize with data.image_size=[{minimum}, {minimum}] "
            "or pick a model for small images"
        )


def check_rank(model: str, input_shape: Sequence[int], ranks: Sequence[int], meaning: str) -> None:
    """Raise UserError unless `input_shape` has one of `ranks` dimensions."""
    if len(input_shape) not in ranks:
        raise UserError(f"{model} takes input_shape {meaning}, got {tuple(input_shape)!r}")


def check_choice(option: str, value: Any, choices: Sequence[str]) -> str:
    """Return `value` if it is one of `choices`."""
    if value not in choices:
        raise UserError(f"option {option!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_bool(option: str, value: Any) -> bool:
    """Return `value` if it is a bool (no truthy strings: "false" would read as True)."""
    if not isinstance(value, bool):
        raise UserError(f"option {option!r} must be true or false, got {value!r}")
    return value


def _is_integer(value: Any) -> bool:
    """True for Python and NumPy integers (shapes often come from arrays), not for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
