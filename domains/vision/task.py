"""Vision classification: train, evaluate, predict and explain on a run directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.metrics import confusion_matrix

from domains.vision import data as vision_data
from domains.vision import plots as vision_plots
from domains.vision.config import VisionConfig
from domains.vision.models import (
    build_classifier,
    compile_classifier,
    pretrain,
)
from shared import model_io, plots
from shared.data import ImageData, build_augmentation, describe, image_dataset, image_files
from shared.distribute import is_chief, select_strategy
from shared.errors import UserError
from shared.explain import gradcam_grid
from shared.metrics import classification_metrics
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir
from shared.training.trainer import (
    completed_epochs,
    fit,
    history_rows,
    make_optimizer,
    runtime_scope,
)
from shared.training.transfer import fit_transfer
from shared.zoo.classifier import has_conv_backbone

LOG = logging.getLogger("deepfield.vision")
DOMAIN, TASK = "vision", "classify"


# === Training ===
def train(config: VisionConfig, run: RunDir) -> dict[str, Any]:
    """Train the configured classifier into `run`, then evaluate it on the test split."""
    if config.task == "generate":
        from domains.vision import generate

        return generate.train(config, run)
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: VisionConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)  # logs which strategy and why
    data = vision_data.load(config.data, config.runtime.seed)
    LOG.info(describe(data))
    chief = is_chief()
    if chief:
        vision_data.record_data(run, data, TASK)

    batch = config.train.batch_size
    augment = build_augmentation(config.data.augment, seed=config.runtime.seed)
    train_ds = image_dataset(
        data,
        "train",
        batch,
        shuffle=True,
        seed=config.runtime.seed,
        augment=augment,
        drop_remainder=config.runtime.strategy == "multi-worker",
    )
    val_ds = image_dataset(data, "validation", batch)
    steps = config.train.steps_per_epoch or max(1, len(data.splits["train"]) // batch)
    multi_worker = config.runtime.strategy == "multi-worker"
    if multi_worker:
        from shared.training.distributed_loop import fit_distributed as fit_fn
    else:
        fit_fn = fit
    extra = {"strategy": strategy} if multi_worker else {}

    def fit_phase(train_config, epochs, initial_epoch=0, checkpoint_dir=None):
        compile_classifier(model, make_optimizer(train_config, steps), config)
        fit_fn(
            model,
            train_ds,
            val_ds,
            run=run,
            train=config.train,
            epochs=epochs,
            initial_epoch=initial_epoch,
            checkpoint_dir=checkpoint_dir,
            **extra,
        )

    with strategy.scope():
        model = build_classifier(config, data)
        if config.transfer.init_from:
            # Transfer: the head learns on a frozen backbone, then everything fine-tunes
            # at a lower rate; each phase resumes from its own checkpoints.
            source = fit_transfer(model, config.transfer, config.train, run, fit_phase)
            LOG.info("backbone initialised from %s", source.path)
        else:
            if completed_epochs(run) == 0:
                errors = pretrain(model, data, config.runtime.seed)
                if errors:
                    LOG.info("greedy pretraining done; reconstruction errors %s", errors)
            fit_phase(config.train, config.train.epochs)

    if not chief:
        return {}
    model_io.save_model(model, run.model_path)
    # Evaluate the saved artifact, outside any strategy: what users will load, and safe
    # after multi-worker training, where the distributed model needs every worker.
    model = load_model(run)
    metrics = evaluate_model(model, data, "test", run)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    if has_conv_backbone(model):  # Grad-CAM needs a conv feature map
        images, labels = data.splits["test"].arrays(limit=config.explain.examples)
        gradcam_grid(model, images[:8], data.class_names, run.plots / "gradcam.png", labels[:8])
    write_card(config, run, data, model, metrics)
    return metrics


def write_card(config: VisionConfig, run: RunDir, data: ImageData, model, metrics) -> None:
    write_model_card(
        run,
        title=f"{config.model.name} image classifier",
        summary=f"A {config.model.name} classifier of {data.num_classes} classes "
        f"trained with Deepfield on `{data.spec}`.",
        data={
            "source": data.spec,
            "classes": ", ".join(data.class_names),
            "image shape": "x".join(map(str, data.image_shape)),
            **{f"{name} examples": len(split) for name, split in data.splits.items()},
        },
        model={
            "architecture": config.model.name,
            "options": json.dumps(config.model.options()) or "{}",
            "parameters": f"{model.count_params():,}",
            "initialised from": config.transfer.init_from or "random",
        },
        training=training_rows(config.train, config.runtime),
        metrics=metrics,
        intended_use="Classifying images like those of the training source, at the same "
        "resolution and colour mode. Inputs are resized to the training image shape.",
        limitations=[
            "Accuracy is measured on a held-out split of the same source; images from "
            "another camera, scanner or population may score lower.",
            "Grad-CAM maps show where the last feature map drove the prediction, "
            "not a causal explanation.",
        ],
    )


# === Evaluation ===
def load_model(run: RunDir) -> keras.Model:
    return model_io.load_model(run.model_path)


def predict_probabilities(model: keras.Model, data: ImageData, split: str, batch: int = 256):
    images, labels = data.splits[split].arrays()
    probabilities = model.predict(images.astype("float32"), batch_size=batch, verbose=0)
    return images, labels, np.asarray(probabilities, np.float64)


def evaluate_model(
    model: keras.Model, data: ImageData, split: str, run: RunDir, out: Path | None = None
) -> dict[str, Any]:
    """Metrics on one split, written to metrics.json (or `out`), with the split's plots."""
    images, labels, probabilities = predict_probabilities(model, data, split)
    predicted = probabilities.argmax(axis=1)
    metrics = {
        **classification_metrics(labels, probabilities),
        "split": split,
        "num_examples": int(len(labels)),
        "task": TASK,
        "domain": DOMAIN,
    }
    run.write_metrics(metrics, path=out)
    matrix = confusion_matrix(labels, predicted, labels=range(data.num_classes))
    plots.confusion_matrix(matrix, data.class_names, run.plots / "confusion_matrix.png")
    vision_plots.misclassified(
        images, labels, probabilities, data.class_names, run.plots / "misclassified.png"
    )
    return metrics


def evaluate(
    run: RunDir, config: VisionConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-evaluate a finished run, on its own data or on another source with its classes."""
    if config.task == "generate":
        from domains.vision import generate

        return generate.evaluate(run, config, source=source, split=split, out=out)
    image_shape, class_names = vision_data.run_inputs(run)
    data_config = config.data.model_copy(
        update={"source": source or config.data.source, "image_size": tuple(image_shape[:2])}
    )
    data = vision_data.load(data_config, config.runtime.seed)
    if list(data.class_names) != class_names:
        raise UserError(
            f"classes of {data.spec} ({', '.join(data.class_names)}) differ from the run's "
            f"({', '.join(class_names)})"
        )
    if tuple(data.image_shape) != image_shape:
        raise UserError(
            f"{data.spec} gives images of shape {data.image_shape}, the run was trained on "
            f"{image_shape}; set data.color_mode to match"
        )
    return evaluate_model(load_model(run), data, split, run, out)


# === Prediction and explanation ===
def load_inputs(run: RunDir, inputs: list[str]) -> tuple[list[Path], np.ndarray, list[str]]:
    """(paths, decoded images, class names) for image files named by the user."""
    shape, class_names = vision_data.run_inputs(run)
    paths = image_files.expand_inputs(inputs)
    images = np.stack([image_files.decode_file(p, shape) for p in paths])
    return paths, images, class_names


def predict(run: RunDir, config, inputs: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """One result per input file: label, class id, probability and the top-k classes."""
    if yaml_task(run) == "generate":
        raise UserError(
            "a generate run has no predict: its samples are in plots/samples.png "
            "(or sample from model.keras)"
        )
    paths, images, names = load_inputs(run, inputs)
    probabilities = load_model(run).predict(images, verbose=0)
    results = []
    for path, probs in zip(paths, probabilities, strict=True):
        order = np.argsort(-probs)[: min(top_k, len(names))]
        results.append(
            {
                "input": str(path),
                "label": names[int(order[0])],
                "class_id": int(order[0]),
                "probability": round(float(probs[order[0]]), 6),
                "top_k": [
                    {"label": names[int(i)], "probability": round(float(probs[i]), 6)}
                    for i in order
                ],
            }
        )
    return results


def yaml_task(run: RunDir) -> str:
    """The task a run was trained for, from its config.yaml."""
    import yaml

    return (yaml.safe_load(run.config_path.read_text()) or {}).get("task", "classify")


def explain(run: RunDir, config: VisionConfig, inputs: list[str], out: Path | None = None) -> Path:
    """Grad-CAM overlays for the given images, or for test examples when none are given."""
    model = load_model(run)
    if config.task != "classify" or not has_conv_backbone(model):
        raise UserError(
            f"{config.model.name} has no convolutional backbone feature map, which Grad-CAM "
            "explains; explain works for CNN classifiers (small_cnn, resnet*, vgg*, alexnet, "
            "lenet5)"
        )
    target = Path(out) if out else run.plots / "gradcam_explain.png"
    if inputs:
        _, images, class_names = load_inputs(run, inputs)
        return gradcam_grid(model, images, class_names, target)
    data = vision_data.load(config.data, config.runtime.seed)
    images, labels = data.splits["test"].arrays(limit=config.explain.examples)
    return gradcam_grid(model, images, data.class_names, target, labels)
