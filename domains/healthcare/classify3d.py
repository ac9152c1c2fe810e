"""Healthcare 3D classification: a zoo volume CNN (`resnet3d`) on MedMNIST 3D archives or
the 3D CT phantom's liver-centred crops (28^3 at 4 mm, lesion or none), calibrated, with
an operating point, on a run directory.

The classify task runs this module when `model.name` is a volume model (the domain's
`task` hook). Everything after the predictions is 2D classify's own: `fit_calibration`
(temperature or isotonic, the threshold, both on the validation split), `evaluate_model`
(metrics.json with the same keys, ROC, reliability and confusion plots), `write_card`,
`calibration.json`; so a 3D run reads like a 2D one.

Predict takes NIfTI files and DICOM series (folders, DICOMDIRs, .dcm files), read as
canonical RAS volumes and prepared as the export prepares them (`classify3d_data`).
Explain draws Grad-CAM on the middle axial slice (the last axis) of each volume.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.healthcare import classify
from domains.healthcare import classify3d_data as vol_data
from domains.healthcare import data as hc_data
from domains.healthcare.config import HealthcareConfig
from shared import model_io, plots
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.explain.gradcam import gradcam_maps, overlay_heatmap
from shared.run_dir import RunDir, write_json
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.zoo import build_model, training_loss

LOG = logging.getLogger("deepfield.healthcare")
# Volumes per model.predict batch: 3D activations are large (a 64^3 volume at width 32 is
# 32 MB per feature map), so far fewer than 2D images fit at once.
PREDICT_BATCH = 16


# === Training ===
def train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    """Train, calibrate on validation, choose the threshold, evaluate on test."""
    if getattr(getattr(config, "transfer", None), "init_from", None):
        raise UserError("--init-from is for 2D classify runs; 3D runs train from scratch")
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    data = vol_data.load(config.data, config.runtime.seed)
    LOG.info(vol_data.describe(data))
    positive = hc_data.positive_index(config, data.class_names)
    vol_data.record_data(run, data, positive, config.data.window)

    batch, seed = config.train.batch_size, config.runtime.seed
    train_ds = vol_data.volume_dataset(
        data, "train", batch, shuffle=True, seed=seed, augment=config.data.augment
    )
    train_ds = classify.with_class_weights(train_ds, data, config)
    val_ds = vol_data.volume_dataset(data, "validation", batch)
    steps = config.train.steps_per_epoch or max(1, -(-len(data.splits["train"]) // batch))
    train_config = classify.capped_train(config, steps)
    with strategy.scope():
        model = build_model(
            config.model.name,
            input_shape=tuple(data.image_shape),
            num_classes=data.num_classes,
            **config.model.options(),
        )
        model.compile(
            optimizer=make_optimizer(train_config, steps),
            loss=training_loss(config.model.name),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.train.jit,
        )
    fit(model, train_ds, val_ds, run=run, train=train_config)
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load

    fitted = classify.fit_calibration(config, model, data, positive)
    write_json(run.path / classify.CALIBRATION, fitted)
    metrics = classify.evaluate_model(model, data, "test", run, fitted)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    volumes, labels = data.splits["test"].arrays(limit=config.explain.examples)
    gradcam_slices(model, volumes, data.class_names, run.plots / "gradcam.png", labels)
    classify.write_card(config, run, data, model, metrics, fitted)
    return metrics


# === Evaluation ===
def evaluate(
    run: RunDir, config: HealthcareConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-evaluate a finished 3D run on its data or on another 3D source with its classes."""
    details, class_names = vol_data.run_contract(run)
    data = vol_data.load(
        config.data.model_copy(update={"source": source or config.data.source}),
        config.runtime.seed,
    )
    if len(data.class_names) != len(class_names):
        raise UserError(
            f"{data.spec} has {len(data.class_names)} classes; the run was trained on "
            f"{len(class_names)} ({', '.join(class_names)})"
        )
    data.class_names = class_names
    if list(data.image_shape) != list(details["model_input"]):
        raise UserError(
            f"{data.spec} holds volumes of shape {data.image_shape}; the run was trained on "
            f"{tuple(details['model_input'])}"
        )
    model = model_io.load_model(run.model_path)
    return classify.evaluate_model(model, data, split, run, classify.read_calibration(run), out)


# === Prediction and explanation ===
def read_volumes(
    inputs: list[str], on_nan: str = "error"
) -> tuple[list[Path], list[np.ndarray], list[tuple]]:
    """(paths, canonical RAS arrays, spacings) of NIfTI files and DICOM series; NaN voxels
    are refused (or replaced, `data.on_nan`), other files refused."""
    from domains.healthcare.seg_inputs import read_input

    if not inputs:
        raise UserError("predict needs at least one NIfTI file or DICOM series")
    read = [read_input(path, on_nan=on_nan) for path in inputs]
    return (
        [item.path for item in read],
        [item.volume.array for item in read],
        [item.volume.spacing for item in read],
    )


def model_inputs(arrays: list[np.ndarray], details: dict[str, Any]) -> np.ndarray:
    """Raw volumes of any sizes -> the model's (N, D, H, W, 1) batch, one by one (sizes
    differ), through the export's own preprocessing graph."""
    prepared = [vol_data.prepare_volumes(a[None].astype(np.float32), details)[0] for a in arrays]
    return np.stack([p.numpy() for p in prepared])


def predict(run: RunDir, config: HealthcareConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """One result per volume: label, calibrated probabilities and, for a binary run, the
    positive class's probability and the decision at the run's threshold."""
    details, names = vol_data.run_contract(run)
    paths, arrays, spacings = read_volumes(inputs, config.data.on_nan)
    volumes = model_inputs(arrays, details)
    model = model_io.load_model(run.model_path)
    fitted = classify.read_calibration(run)
    raw = np.asarray(model.predict(volumes, batch_size=PREDICT_BATCH, verbose=0), np.float64)
    calibrated = classify.apply_calibration(fitted, raw)
    return [
        classify.prediction_result(
            path,
            probs,
            names,
            fitted,
            shape=list(array.shape),
            spacing_mm=[round(float(s), 4) for s in spacing],
        )
        for path, array, spacing, probs in zip(paths, arrays, spacings, calibrated, strict=True)
    ]


def explain(
    run: RunDir, config: HealthcareConfig, inputs: list[str], out: Path | None = None
) -> Path:
    """Grad-CAM on the middle axial slice of the given volumes (or of test volumes)."""
    details, names = vol_data.run_contract(run)
    model = model_io.load_model(run.model_path)
    target = Path(out) if out else run.plots / "gradcam_explain.png"
    if inputs:
        _, arrays, _ = read_volumes(inputs, config.data.on_nan)
        return gradcam_slices(model, model_inputs(arrays, details), names, target)
    data = vol_data.load(config.data, config.runtime.seed)
    volumes, labels = data.splits["test"].arrays(limit=config.explain.examples)
    return gradcam_slices(model, volumes, names, target, labels)


def gradcam_volumes(model: keras.Model, volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3D Grad-CAM maps in [0, 1] at the volumes' size, and the class each explains."""
    volumes = tf.convert_to_tensor(volumes, tf.float32)
    cam, class_ids = gradcam_maps(model, volumes)
    size = volumes.shape[1:4]
    return vol_data.resize_volumes(cam, size).numpy(), class_ids


def gradcam_slices(
    model: keras.Model,
    volumes: np.ndarray,
    class_names: list[str],
    path: Path,
    labels: np.ndarray | None = None,
) -> Path:
    """Each volume's middle slice along its last axis beside the same slice of its 3D
    Grad-CAM for the predicted class."""
    heatmaps, class_ids = gradcam_volumes(model, volumes)
    middle = volumes.shape[3] // 2
    tiles, titles = [], []
    for i, (volume, heat) in enumerate(zip(volumes, heatmaps, strict=True)):
        image = np.asarray(volume[:, :, middle], np.float32)  # (D, H, 1)
        truth = f" (true {class_names[labels[i]]})" if labels is not None else ""
        tiles += [np.repeat(image, 3, axis=-1), overlay_heatmap(image, heat[:, :, middle])]
        titles += [f"slice {middle}{truth}", f"Grad-CAM: {class_names[class_ids[i]]}"]
    return plots.image_grid(
        np.stack(tiles), titles, path, columns=8, suptitle="3D Grad-CAM, middle slice"
    )
