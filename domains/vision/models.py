"""Vision models: zoo classifiers built from the config, and transfer from a run."""

from __future__ import annotations

import keras

from domains.vision.config import VisionConfig, model_fits
from shared.data import ImageData
from shared.errors import UserError
from shared.zoo import build_model, model_spec, training_loss


def check_vision_model(name: str, task: str) -> None:
    """Raise UserError unless zoo model `name` can train on images for `task`."""
    from shared.zoo import MODELS

    def fits(spec) -> bool:
        return model_fits(task, spec.kind, spec.modalities)

    spec = model_spec(name)
    if not fits(spec):
        usable = [n for n in MODELS.names() if fits(model_spec(n))]
        raise UserError(
            f"model {name!r} ({spec.kind}) cannot be trained by vision --task {task}; "
            f"models that can: {', '.join(usable)}"
        )


def build_classifier(config: VisionConfig, data: ImageData) -> keras.Model:
    """The configured zoo classifier for this data's image shape and classes."""
    check_vision_model(config.model.name, "classify")
    return build_model(
        config.model.name,
        input_shape=tuple(data.image_shape),
        num_classes=data.num_classes,
        **config.model.options(),
    )


def compile_classifier(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, config: VisionConfig
) -> None:
    """Integer labels, reported as loss and accuracy."""
    model.compile(
        optimizer=optimizer,
        loss=training_loss(config.model.name),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=config.train.jit,
    )


def pretrain(model: keras.Model, data: ImageData, seed: int) -> list[float]:
    """Unsupervised pretraining a model asks for (a DBN's greedy CD-k); [] for others."""
    from shared.zoo.dbn import greedy_pretrain, rbm_layers

    if not rbm_layers(model):
        return []
    images, _ = data.splits["train"].arrays()
    return greedy_pretrain(model, images, seed=seed)
