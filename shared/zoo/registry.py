"""Build zoo models by name, with their options checked before anything is built.

A builder is a function `builder(input_shape, num_classes, *, option=default, ...)`
registered in `MODELS`; its keyword-only parameters are its options, so the valid
option names and their defaults come from the signature and cannot drift from it.

`build_model` checks only what every model shares (1 to 4 positive dims; a class
count >= 2 when one is given); each builder checks the rank it needs, so vectors,
token sequences, images and volumes all go through the same door. `register_model`
also records a `ModelSpec` (what the model does, the input modalities it takes and its
paper input) that `deepfield zoo list` and the domains read; models registered with
plain `MODELS.register` get a spec with no preset input and no modality.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from shared.blocks import BernoulliRBM, CapsuleRouting, ModulatedConv2D
from shared.errors import UserError
from shared.registry import Registry
from shared.zoo.classifier import check_num_classes, check_shape

MODELS = Registry("model")
# Training losses by name, for models whose outputs need their own (CapsNet's margin loss).
LOSSES = Registry("loss")
LOSSES.register("sparse_categorical_crossentropy", keras.losses.SparseCategoricalCrossentropy)
LOSSES.register(
    "binary_crossentropy_from_logits", lambda: keras.losses.BinaryCrossentropy(from_logits=True)
)
LOSSES.register("mean_squared_error", keras.losses.MeanSquaredError)

# What a model is for; with its modalities this says which domain can train it (vision
# trains classifiers that take images on `--task classify`, generative ones on
# `--task generate`; finance the table and sequence models).
MODEL_KINDS = (
    "image_classifier",
    "sequence_classifier",
    "tabular_classifier",
    "text_classifier",
    "language_model",
    "seq2seq",
    "autoencoder",
    "generative",
    "segmentation",
    "detector",
    "policy",
    "other",
)
# What a model takes in, so a domain picks the models that fit its data: images
# (H, W, C), token ids (seq_len,), encoded table rows (features,), sequences of vectors
# (time, features), volumes (D, H, W, C), RL observations.
MODALITIES = ("image", "tokens", "table", "sequence", "volume", "observation")


@dataclass(frozen=True)
class ModelSpec:
    """What `deepfield zoo list` shows a model at, and which pipelines can train it.

    Attributes:
        kind: One of `MODEL_KINDS`.
        preset_input: The paper's input shape (None: the model has no preset).
        preset_classes: The paper's class count, or None where classes do not apply.
        preset_options: Options the listing builds the model with (e.g. a paper head).
        modalities: The `MODALITIES` it takes, the one of its preset input first (a
            recurrent classifier reads images row by row, tokens and vector sequences).
        loss: Name in `LOSSES` of the loss a classifier trains with.
    """

    kind: str = "other"
    preset_input: tuple[int, ...] | None = None
    preset_classes: int | None = None
    preset_options: tuple[tuple[str, Any], ...] = ()
    modalities: tuple[str, ...] = ()
    loss: str = "sparse_categorical_crossentropy"

    @property
    def modality(self) -> str | None:
        """The modality of the preset input (None for a model without a spec)."""
        return self.modalities[0] if self.modalities else None

    def takes(self, modality: str) -> bool:
        """Whether the model takes inputs of `modality`."""
        return modality in self.modalities


SPECS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    kind: str,
    modality: str | Sequence[str],
    preset_input: tuple[int, ...],
    preset_classes: int | None = None,
    preset_options: dict[str, Any] | None = None,
    loss: str = "sparse_categorical_crossentropy",
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator: register a builder in `MODELS` together with its `ModelSpec`.

    `modality` is one of `MODALITIES`, or several with the preset input's first.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    modalities = (modality,) if isinstance(modality, str) else tuple(modality)
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown:
        raise ValueError(f"modality must be among {MODALITIES}, got {modality!r}")

    def add(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        MODELS.register(name, builder)
        SPECS[name] = ModelSpec(
            kind,
            tuple(preset_input),
            preset_classes,
            tuple((preset_options or {}).items()),
            modalities,
            loss,
        )
        return builder

    return add


def model_spec(name: str) -> ModelSpec:
    """The spec of model `name` (a bare one for models registered without a spec)."""
    MODELS.get(name)  # raises the UserError with close matches for an unknown name
    return SPECS.get(name, ModelSpec())


# Layer types counted by `count_weight_layers`: the layers that "depth" counts in
# architecture names (ResNet-50 has 49 convs + 4 projections + 1 dense), plus recurrent
# layers (a bidirectional one counts 2) and the zoo's own layers that hold weight
# matrices (capsule routing, RBMs, modulated convolutions).
# Convolutions (every kind) and Dense: the layers whose `kernel` is a weight matrix (also
# what shared.compression prunes).
KERNEL_LAYER_TYPES: tuple[type, ...] = (
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
WEIGHT_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.RNN,
    CapsuleRouting,
    BernoulliRBM,
    ModulatedConv2D,
    *KERNEL_LAYER_TYPES,
)


def model_options(name: str) -> dict[str, Any]:
    """Option names of model `name` mapped to their defaults, in signature order."""
    builder = MODELS.get(name)
    return {
        param.name: param.default
        for param in inspect.signature(builder).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }


def training_loss(name: str) -> keras.losses.Loss:
    """A fresh instance of the loss model `name` trains with."""
    return LOSSES.get(model_spec(name).loss)()


def build_model(
    name: str, *, input_shape: Sequence[int], num_classes: int | None = None, **options: Any
) -> keras.Model:
    """Build zoo model `name` for inputs of `input_shape` and `num_classes` classes.

    `input_shape` excludes the batch axis: (H, W, C) for image models, (features,)
    for vectors, (seq_len,) for token models. `num_classes` may be None for models
    without classes (language models, autoencoders, generators).

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
    if num_classes is None:
        classes = None
    elif SPECS.get(name, ModelSpec()).kind == "detector":
        # A detector scores each class with its own sigmoid: one class (vehicles) is fine.
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise UserError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        classes = num_classes
    else:
        classes = check_num_classes(num_classes)
    return builder(check_shape(input_shape), classes, **options)


def model_info(name: str) -> str:
    """One-paragraph description of model `name` followed by its options and defaults."""
    builder = MODELS.get(name)
    doc = inspect.getdoc(builder) or ""
    summary = " ".join(doc.split("\n\n")[0].split())
    options = ", ".join(f"{opt}={_show(default)}" for opt, default in model_options(name).items())
    return f"{name}: {summary}\noptions: {options or '(none)'}"


def count_weight_layers(model: keras.Layer) -> int:
    """Number of weight layers (`WEIGHT_LAYER_TYPES`) in `model`, inside nested models too."""
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
    "LOSSES",
    "MODELS",
    "MODALITIES",
    "MODEL_KINDS",
    "SPECS",
    "ModelSpec",
    "model_spec",
    "register_model",
    "WEIGHT_LAYER_TYPES",
    "build_model",
    "count_weight_layers",
    "model_info",
    "model_options",
]
