"""Healthcare classification: a zoo CNN on 2D medical images, calibrated, with an
operating point, on a run directory.

Train fits the model on the training split (early stopping on the validation loss),
then fits the calibration and chooses the threshold on the validation split, and reports
on the test split. `calibration.json` keeps both; evaluate, predict and the export read
it, so every path gives the same calibrated probability.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix, roc_curve

from domains.healthcare import clinical
from domains.healthcare import data as hc_data
from domains.healthcare.config import HealthcareConfig
from shared import calibration, model_io, plots
from shared.data import ImageData, build_augmentation, describe, image_dataset
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.explain import gradcam_grid
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir, write_json
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.training.transfer import fit_transfer
from shared.training.weights import class_weights
from shared.zoo import build_model, training_loss
from shared.zoo.classifier import has_conv_backbone

LOG = logging.getLogger("deepfield.healthcare")
DOMAIN, TASK = "healthcare", "classify"
CALIBRATION = "calibration.json"


# === Training ===
def train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    """Train, calibrate on validation, choose the threshold, evaluate on test."""
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    data = hc_data.load(config.data, config.runtime.seed)
    LOG.info(describe(data))
    positive = hc_data.positive_index(config, data.class_names)
    hc_data.record_data(run, data, positive)

    batch, seed = config.train.batch_size, config.runtime.seed
    augment = build_augmentation(config.data.augment, seed=seed) if config.data.augment else None
    train_ds = image_dataset(data, "train", batch, shuffle=True, seed=seed, augment=augment)
    train_ds = with_class_weights(train_ds, data, config)
    val_ds = image_dataset(data, "validation", batch)
    steps = config.train.steps_per_epoch or max(1, -(-len(data.splits["train"]) // batch))
    train_config = capped_train(config, steps)

    def fit_phase(phase, epochs, initial_epoch=0, checkpoint_dir=None):
        model.compile(
            optimizer=make_optimizer(phase, steps),
            loss=training_loss(config.model.name),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.train.jit,
        )
        fit(
            model,
            train_ds,
            val_ds,
            run=run,
            train=phase,
            epochs=epochs,
            initial_epoch=initial_epoch,
            checkpoint_dir=checkpoint_dir,
        )

    with strategy.scope():
        model = build_classifier(config, data)
        if config.transfer.init_from:
            source = fit_transfer(model, config.transfer, train_config, run, fit_phase)
            LOG.info("backbone initialised from %s", source.path)
        else:
            fit_phase(train_config, train_config.epochs)
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load

    tta = uses_tta(config)
    scorer = scoring_model(model, tta)
    fitted = {**fit_calibration(config, scorer, data, positive), "tta": tta}
    write_json(run.path / CALIBRATION, fitted)
    metrics = evaluate_model(scorer, data, "test", run, fitted)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    if has_conv_backbone(model):
        images, labels = data.splits["test"].arrays(limit=config.explain.examples)
        gradcam_grid(model, images, data.class_names, run.plots / "gradcam.png", labels)
    write_card(config, run, data, model, metrics, fitted)
    return metrics


def with_class_weights(train_ds, data: ImageData, config: HealthcareConfig):
    """`train_ds` with each example's class weight (`data.class_weight`), or as it is."""
    _, train_labels = data.splits["train"].arrays()
    weights = class_weights(train_labels, data.num_classes, config.data.class_weight)
    if weights is None:
        return train_ds
    LOG.info("class weights (%s): %s", config.data.class_weight, np.round(weights, 3))
    table = tf.constant(weights)
    return train_ds.map(lambda x, y: (x, y, tf.gather(table, y)))


def capped_train(config: HealthcareConfig, steps: int):
    """The `train` section with its epochs cut by `train.max_steps` (logged when it is)."""
    capped = config.train.capped(steps)
    if capped.epochs < config.train.epochs:
        LOG.info(
            "train.max_steps %d: %d epochs of %d steps instead of %d",
            config.train.max_steps,
            capped.epochs,
            steps,
            config.train.epochs,
        )
    return capped


def build_classifier(config: HealthcareConfig, data: ImageData) -> keras.Model:
    return build_model(
        config.model.name,
        input_shape=tuple(data.image_shape),
        num_classes=data.num_classes,
        **config.model.options(),
    )


# === Test-time augmentation ===
def uses_tta(config: HealthcareConfig) -> bool:
    """Whether the run scores each image with its horizontal mirror too (`data.tta`)."""
    if config.data.tta == "auto":
        return config.data.augment.get("flip") in ("horizontal", "horizontal_and_vertical")
    return config.data.tta == "flip"


def scoring_model(model: keras.Model, tta: bool) -> keras.Model:
    """The model a run scores with: `model`, or with test-time augmentation the mean of its
    probabilities on the image and on its horizontal mirror. Calibration is fitted on these
    scores, so evaluation, predict and the export (which all call this with the run's
    `calibration.json` "tta") give the same numbers."""
    if not tta:
        return model
    image = keras.Input(model.input_shape[1:], name="image")
    mirrored = keras.ops.flip(image, axis=-2)  # (N, H, W, C): W is the horizontal axis
    mean = keras.layers.Average(name="tta_mean")([model(image), model(mirrored)])
    return keras.Model(image, mean, name=f"{model.name}_tta")


# === Calibration ===
def fit_calibration(
    config: HealthcareConfig, model: keras.Model, data: ImageData, positive: int
) -> dict[str, Any]:
    """The calibrator and the threshold, both fitted on the validation split."""
    _, labels, raw = predict_split(model, data, "validation")
    method = config.calibration.method
    fitted: dict[str, Any] = {"method": method, "positive": positive}
    if method == "temperature":
        fitted["temperature"] = calibration.fit_temperature(raw, labels)
    elif method == "isotonic":
        if raw.shape[1] != 2:
            raise UserError(
                "calibration.method=isotonic calibrates a binary classifier; this data has "
                f"{raw.shape[1]} classes: use temperature"
            )
        fitted["isotonic"] = calibration.fit_calibrator(
            "isotonic", logit(raw[:, positive]), (labels == positive).astype(int)
        )
    calibrated = apply_calibration(fitted, raw)
    if raw.shape[1] == 2:
        rule = config.threshold
        fitted["threshold"] = clinical.choose_threshold(
            (labels == positive).astype(int),
            calibrated[:, positive],
            rule.rule,
            rule.target_sensitivity,
            rule.value,
        )
        fitted["threshold_rule"] = rule.rule
    LOG.info("calibration on %d validation images: %s", len(labels), json.dumps(fitted))
    return fitted


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def apply_calibration(fitted: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """Calibrated class probabilities (N x K) from the model's (N x K)."""
    method = fitted["method"]
    if method == "temperature":
        return calibration.apply_temperature(raw, fitted["temperature"])
    if method == "isotonic":
        positive = fitted["positive"]
        q = calibration.apply(fitted["isotonic"], logit(raw[:, positive]))
        out = np.empty_like(raw, dtype=np.float64)
        out[:, positive], out[:, 1 - positive] = q, 1 - q
        return out
    return np.asarray(raw, np.float64)


def read_calibration(run: RunDir) -> dict[str, Any]:
    path = run.path / CALIBRATION
    if not path.is_file():
        raise UserError(f"{run.path} has no {CALIBRATION}; its training did not finish")
    return json.loads(path.read_text())


# === Evaluation ===
def predict_split(model: keras.Model, data: ImageData, split: str):
    images, labels = data.splits[split].arrays()
    probabilities = model.predict(images.astype("float32"), batch_size=256, verbose=0)
    return images, labels, np.asarray(probabilities, np.float64)


def evaluate_model(
    model: keras.Model,
    data: ImageData,
    split: str,
    run: RunDir,
    fitted: dict[str, Any],
    out: Path | None = None,
) -> dict[str, Any]:
    """Metrics of one split (metrics.json, or `out`) and its ROC, reliability and
    confusion-matrix plots."""
    _, labels, raw = predict_split(model, data, split)
    calibrated = apply_calibration(fitted, raw)
    positive = int(fitted["positive"])
    bins = 10
    metrics = {
        **clinical.report(
            labels,
            raw,
            calibrated,
            positive=positive,
            threshold=fitted.get("threshold"),
            bins=bins,
        ),
        "split": split,
        "num_examples": int(len(labels)),
        "task": TASK,
        "domain": DOMAIN,
    }
    run.write_metrics(metrics, path=out)
    matrix = confusion_matrix(labels, raw.argmax(axis=1), labels=range(data.num_classes))
    plots.confusion_matrix(matrix, data.class_names, run.plots / "confusion_matrix.png")
    plots.reliability_diagram(
        clinical.reliability(labels, raw, calibrated, positive, bins),
        run.plots / "reliability.png",
        title=f"reliability ({fitted['method']}): ECE {metrics['ece_uncalibrated']:.3f} "
        f"-> {metrics['ece']:.3f}",
    )
    if len(np.unique(labels)) > 1:
        names = data.class_names
        classes = [positive] if raw.shape[1] == 2 else range(raw.shape[1])
        curves = {
            names[c]: roc_curve(labels == c, calibrated[:, c])[:2]
            for c in classes
            if (labels == c).any()
        }
        point = None
        if "sensitivity" in metrics:
            point = (1 - metrics["specificity"], metrics["sensitivity"])
        plots.roc_curves(
            curves, run.plots / "roc.png", title=f"ROC (AUC {metrics['roc_auc']:.3f})", point=point
        )
    return metrics


def evaluate(
    run: RunDir, config: HealthcareConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-evaluate a finished run on its data or on another source with its classes."""
    image_shape, class_names, _ = hc_data.run_inputs(run)
    data_config = config.data.model_copy(
        update={"source": source or config.data.source, "image_size": tuple(image_shape[:2])}
    )
    data = hc_data.load(data_config, config.runtime.seed)
    if len(data.class_names) != len(class_names):
        raise UserError(
            f"{data.spec} has {len(data.class_names)} classes; the run was trained on "
            f"{len(class_names)} ({', '.join(class_names)})"
        )
    data.class_names = class_names
    if tuple(data.image_shape) != image_shape:
        raise UserError(
            f"{data.spec} gives images of shape {data.image_shape}; the run was trained on "
            f"{image_shape}: set data.color_mode to match"
        )
    fitted = read_calibration(run)
    model = scoring_model(model_io.load_model(run.model_path), fitted.get("tta", False))
    return evaluate_model(model, data, split, run, fitted, out)


# === Prediction and explanation ===
def predict(run: RunDir, config: HealthcareConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """One result per input (PNG/JPEG, or a DICOM slice): label, calibrated probabilities,
    the positive class's probability and the decision at the run's threshold."""
    from domains.healthcare import inputs as hc_inputs

    shape, names, _ = hc_data.run_inputs(run)
    paths, images = hc_inputs.load_images(inputs, shape, config.data.window)
    fitted = read_calibration(run)
    model = scoring_model(model_io.load_model(run.model_path), fitted.get("tta", False))
    raw = np.asarray(model.predict(images, verbose=0), np.float64)
    calibrated = apply_calibration(fitted, raw)
    return [
        prediction_result(path, probs, names, fitted)
        for path, probs in zip(paths, calibrated, strict=True)
    ]


def prediction_result(
    path, probs: np.ndarray, names: list[str], fitted: dict[str, Any], **details: Any
) -> dict[str, Any]:
    """What predict prints for one input (2D or 3D): the arg-max label, the calibrated
    probabilities and, for a binary run, the positive class's probability and decision."""
    best = int(np.argmax(probs))
    result: dict[str, Any] = {
        "input": str(path),
        **details,
        "label": names[best],
        "class_id": best,
        "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
    }
    if len(names) == 2:
        positive = int(fitted["positive"])
        result["positive_class"] = names[positive]
        result["probability"] = round(float(probs[positive]), 6)
        result["positive"] = bool(probs[positive] >= fitted["threshold"])
    return result


def explain(
    run: RunDir, config: HealthcareConfig, inputs: list[str], out: Path | None = None
) -> Path:
    """Grad-CAM overlays for the given images, or for test images when none are given."""
    model = model_io.load_model(run.model_path)
    if not has_conv_backbone(model):
        raise UserError(
            f"{config.model.name} has no convolutional feature map for Grad-CAM; explain "
            "works for the CNN classifiers (small_cnn, resnet*, vgg*, alexnet, lenet5)"
        )
    target = Path(out) if out else run.plots / "gradcam_explain.png"
    shape, names, _ = hc_data.run_inputs(run)
    if inputs:
        from domains.healthcare import inputs as hc_inputs

        _, images = hc_inputs.load_images(inputs, shape, config.data.window)
        return gradcam_grid(model, images, names, target)
    data = hc_data.load(
        config.data.model_copy(update={"image_size": tuple(shape[:2])}), config.runtime.seed
    )
    images, labels = data.splits["test"].arrays(limit=config.explain.examples)
    return gradcam_grid(model, images.astype("float32"), names, target, labels)


# === Model card ===
def write_card(config, run, data: ImageData, model, metrics, fitted) -> None:
    positive = data.class_names[int(fitted["positive"])]
    write_model_card(
        run,
        title=f"{config.model.name} medical image classifier",
        summary=f"A {config.model.name} classifier of {data.num_classes} classes trained "
        f"with Deepfield on `{data.spec}`, calibrated by {fitted['method']} scaling on the "
        "validation split.",
        data={
            "source": data.spec,
            "classes": ", ".join(data.class_names),
            "positive class": positive,
            "image shape": "x".join(map(str, data.image_shape)),
            **{f"{name} images": len(split) for name, split in data.splits.items()},
        },
        model={
            "architecture": config.model.name,
            "options": json.dumps(config.model.options()) or "{}",
            "parameters": f"{model.count_params():,}",
            "calibration": json.dumps(fitted),
            "initialised from": config.transfer.init_from or "random",
        },
        training=training_rows(
            config.train, config.runtime, **{"class weights": config.data.class_weight}
        ),
        metrics=metrics,
        intended_use="Research and education: ranking and triaging images like those of the "
        "training source. Not a medical device; not for diagnosis.",
        limitations=[
            "Figures are measured on a held-out split of the same source; another scanner, "
            "site or population may score lower and be calibrated differently.",
            f"Sensitivity and specificity are at the threshold chosen on the validation "
            f"split ({fitted.get('threshold_rule', 'none')}); another operating point trades "
            "one for the other.",
            "Grad-CAM maps show where the last feature map drove the prediction, not a "
            "causal explanation.",
        ],
    )
