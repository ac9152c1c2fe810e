"""Healthcare segmentation: the zoo's U-Net (2D slices) or 3D U-Net (patches) on label
maps, with Dice + cross-entropy, class-balanced patch sampling and Gaussian
sliding-window inference, on a run directory.

Train fits on the training cases (validation loss and Dice per epoch), then predicts every
test case whole (sliding windows where it is larger than the patch) and reports
`seg_metrics.segmentation_metrics` (Dice and HD95 in mm per class, with the stated
empty-mask rules) plus lesion detection where a class is called "lesion". `inputs.json`
records the normalisation, window, patch and spacing, so evaluate, predict, explain and
the export preprocess exactly as training did.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from domains.healthcare import seg_checks, seg_data, seg_metrics
from domains.healthcare.config import HealthcareConfig, window_range
from domains.healthcare.seg_data import SegCase, SegData
from domains.healthcare.seg_plots import display_axes, overlays
from domains.healthcare.seg_training import (
    DiceCrossEntropy,
    ForegroundDice,
    patch_sampler,
    prepare,
    validation_patches,
)
from shared import model_io, plots
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.model_card import training_rows, write_model_card
from shared.run_dir import RunDir
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope
from shared.zoo import build_model

LOG = logging.getLogger("deepfield.healthcare")
DOMAIN, TASK = "healthcare", "segment"
PREDICT_BATCH = 16


# === Training ===
def train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    """Train the U-Net, then evaluate the test cases whole."""
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: HealthcareConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    seed = config.runtime.seed
    data = seg_data.load(config, seed)
    patch = seg_data.patch_size(config, data)
    mode = seg_data.normalize_mode(config, data.modality)
    record_data(run, config, data, patch, mode)
    LOG.info(
        "%s: %s cases, %d classes (%s), patch %s, normalisation %s",
        data.spec,
        {k: len(v) for k, v in data.splits.items()},
        len(data.label_names),
        ", ".join(data.label_names),
        patch,
        mode,
    )
    window = config.data.window
    train_cases = prepare(data.splits["train"], patch, mode, window, seed)
    val_cases = prepare(data.splits["validation"], patch, mode, window, seed + 1)
    generate, count = patch_sampler(train_cases, patch, config, seed)
    batch = config.train.batch_size
    spec = (
        tf.TensorSpec((*patch, 1), tf.float32),
        tf.TensorSpec(patch, tf.uint8),
    )
    train_ds = tf.data.Dataset.from_generator(generate, output_signature=spec)
    if config.train.steps_per_epoch:  # a fixed number of batches: draw patches endlessly
        train_ds = train_ds.repeat()
    else:  # one pass of `count` patches per epoch, redrawn every epoch
        train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(count))
    train_ds = train_ds.batch(batch).prefetch(tf.data.AUTOTUNE)
    val_ds = tf.data.Dataset.from_tensor_slices(validation_patches(val_cases, patch)).batch(batch)
    steps = config.train.steps_per_epoch or max(1, -(-count // batch))
    classes = len(data.label_names)
    with strategy.scope():
        model = build_segmenter(config, patch, classes)
        model.compile(
            optimizer=make_optimizer(config.train, steps),
            loss=DiceCrossEntropy(classes, config.segment.dice_weight, config.segment.ce_weight),
            metrics=[ForegroundDice(classes)],
            jit_compile=config.train.jit,
        )
    fit(model, train_ds, val_ds, run=run, train=config.train)
    save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load
    metrics = evaluate_model(model, data, "test", run, config)
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, data, model, metrics, patch, mode)
    return metrics


def build_segmenter(config: HealthcareConfig, patch: tuple[int, ...], classes: int):
    return build_model(
        seg_checks.model_name(config),
        input_shape=(*patch, 1),
        num_classes=classes,
        **config.model.options(),
    )


def save_model(model: keras.Model, path: Path) -> None:
    """model.keras without the compile state, so it loads with `import shared.zoo` alone
    (the Dice loss and metric live in this domain, not in the zoo)."""
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    model_io.save_model(clean, path)


# === The run's input contract ===
def record_data(
    run: RunDir, config: HealthcareConfig, data: SegData, patch: tuple[int, ...], mode: str
) -> None:
    """data_splits.json (case ids per split) and inputs.json (how inputs are prepared)."""
    report = dict(data.report)
    sizes = {name: len(cases) for name, cases in data.splits.items()}
    run.write_splits(
        data.spec,
        sizes,
        seed=report.get("seed"),
        method=report.get("method"),
        grouped_by="case",
        case_ids=report.get("case_ids"),
    )
    low, high = window_range(config.data.window)
    dims = data.dims
    InputContract(
        DOMAIN,
        TASK,
        [
            InputSpec(
                "image",
                "float32",
                [None] * dims,
                f"{'2D slices' if dims == 2 else '3D volumes'} of raw intensities (HU for "
                f"CT), any size; normalised by {mode} inside; canonical RAS axes",
            )
        ],
        classes=list(data.label_names),
        details={
            "source": data.spec,
            "dims": dims,
            "patch_size": list(patch),
            "normalize": mode,
            "window": [low, high],
            "modality": data.modality,
            "spacing": list(seg_data._target(config, dims)) if config.data.spacing else None,
            "model": seg_checks.model_name(config),
        },
    ).write(run)


def run_contract(run: RunDir) -> dict[str, Any]:
    """The segment facts of a trained run: dims, patch, normalisation, window, labels."""
    contract = InputContract.read(run)
    if contract.task != TASK:
        raise UserError(f"{run.path} is a {contract.task} run, not a segment run")
    details = dict(contract.details or {})
    details["label_names"] = list(contract.classes or [])
    details["patch_size"] = tuple(details["patch_size"])
    return details


# === Inference ===
def predict_probabilities(
    model: keras.Model, images: list[np.ndarray], contract: dict[str, Any], config
) -> list[np.ndarray]:
    """Class probabilities (spatial..., K) of normalised images (spatial...), each whole:
    one model call where an image is the patch size, Gaussian sliding windows otherwise."""
    from domains.healthcare.sliding_window import sliding_window_inference

    patch = tuple(contract["patch_size"])

    def run_batch(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch.astype(np.float32)))

    same = [i for i, image in enumerate(images) if image.shape == patch]
    out: list[np.ndarray | None] = [None] * len(images)
    for first in range(0, len(same), 32):
        chunk = same[first : first + 32]
        probs = run_batch(np.stack([images[i] for i in chunk])[..., None])
        for i, p in zip(chunk, probs, strict=True):
            out[i] = p
    for i, image in enumerate(images):
        if out[i] is None:
            out[i] = sliding_window_inference(
                image[..., None],
                patch,
                run_batch,
                overlap=config.segment.overlap,
                sigma_scale=config.segment.sigma_scale,
                batch_size=PREDICT_BATCH,
            )
    return out  # type: ignore[return-value]


def segment_cases(
    model: keras.Model, cases: list[SegCase], contract: dict[str, Any], config
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(label maps, probabilities) of raw cases, normalised as the run was trained."""
    images = [
        seg_data.normalize(case.image, contract["normalize"], contract["window_spec"])
        for case in cases
    ]
    probs = predict_probabilities(model, images, contract, config)
    return [p.argmax(axis=-1).astype(np.uint8) for p in probs], probs


def with_window(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract with its window as a [level, width] spec that `normalize` reads."""
    low, high = contract["window"]
    return {**contract, "window_spec": ((low + high) / 2, high - low)}


# === Evaluation ===
def evaluate_model(
    model: keras.Model,
    data: SegData,
    split: str,
    run: RunDir,
    config: HealthcareConfig,
    out: Path | None = None,
) -> dict[str, Any]:
    """Dice, HD95 and lesion detection of one split (metrics.json, or `out`) and its
    overlay plot."""
    if split not in data.splits:
        raise UserError(f"no split {split!r}; this data has {', '.join(data.splits)}")
    cases = data.splits[split]
    contract = with_window(run_contract(run))
    names = contract["label_names"]
    if len(data.label_names) > len(names):
        raise UserError(
            f"{data.spec} has {len(data.label_names)} labels ({', '.join(data.label_names)}); "
            f"the run was trained on {len(names)} ({', '.join(names)})"
        )
    preds, _ = segment_cases(model, cases, contract, config)
    trues = [case.mask for case in cases]
    metrics: dict[str, Any] = seg_metrics.segmentation_metrics(
        preds, trues, [case.spacing for case in cases], names
    )
    if "lesion" in [n.lower() for n in names]:
        metrics.update(lesion_metrics(preds, trues, names, config.segment.lesion_overlap))
    metrics.update(split=split, num_examples=len(cases), task=TASK, domain=DOMAIN)
    run.write_metrics(metrics, path=out)
    overlays(cases, preds, names, contract, run.plots / "overlays.png", config.segment.overlays)
    LOG.info("%s split: %s", split, json.dumps({k: v for k, v in metrics.items()}))
    return metrics


def lesion_metrics(
    preds: list[np.ndarray], trues: list[np.ndarray], names: list[str], min_overlap: float
) -> dict[str, float]:
    """Lesion-wise detection summed over cases: sensitivity, detected and missed lesions,
    false-positive components per case."""
    label = [n.lower() for n in names].index("lesion")
    totals = {"true_lesions": 0, "detected": 0, "false_positive_components": 0}
    for pred, true in zip(preds, trues, strict=True):
        found = seg_metrics.lesion_detection(pred == label, true == label, min_overlap)
        for key in totals:
            totals[key] += found[key]
    true = totals["true_lesions"]
    return {
        "lesion_sensitivity": totals["detected"] / true if true else 1.0,
        "lesion_true": float(true),
        "lesion_detected": float(totals["detected"]),
        "lesion_false_positives_per_case": totals["false_positive_components"] / len(trues),
    }


def evaluate(
    run: RunDir, config: HealthcareConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-evaluate a finished run on its own split, or on another source whole."""
    model = model_io.load_model(run.model_path)
    if source and source != config.data.source:
        other = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
        data = seg_data.load(other, config.runtime.seed, whole=True)
        split = "all"
    else:
        data = seg_data.load(config, config.runtime.seed)
    return evaluate_model(model, data, split, run, config, out)


# === Prediction ===
def predict(run: RunDir, config: HealthcareConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """Segment NIfTI files or DICOM series: each mask is written as NIfTI to
    RUN/predictions/<name>_mask.nii.gz on the input's own voxel grid and affine; one
    result per input with the mask path and the volume of each class in millilitres."""
    from domains.healthcare import seg_inputs

    contract = with_window(run_contract(run))
    names = contract["label_names"]
    volumes = [seg_inputs.read_input(path, config.data.on_nan) for path in inputs]
    model = model_io.load_model(run.model_path)
    folder = run.path / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for item in volumes:
        grid = seg_inputs.model_grid(item.volume, contract)
        labels = segment_volume(model, grid.array, contract, config)
        mask = seg_inputs.back_to_input(labels, grid, item)
        target = folder / f"{item.name}_mask.nii.gz"
        seg_inputs.write_mask(mask, item, target)
        results.append(
            {
                "input": str(item.path),
                "mask": str(target),
                "shape": list(mask.shape),
                "spacing_mm": [round(s, 6) for s in item.original_spacing],
                **{
                    k: round(v, 4)
                    for k, v in seg_metrics.volumes_ml(mask, item.original_spacing, names).items()
                },
            }
        )
    return results


def segment_volume(
    model: keras.Model, array: np.ndarray, contract: dict[str, Any], config
) -> np.ndarray:
    """Labels of one canonical 3D array: whole in 3D, slice by slice (last axis) in 2D."""
    mode, window = contract["normalize"], contract["window_spec"]
    if contract["dims"] == 3:
        image = seg_data.normalize(array, mode, window)
        return (
            predict_probabilities(model, [image], contract, config)[0].argmax(-1).astype(np.uint8)
        )
    slices = [seg_data.normalize(array[..., k], mode, window) for k in range(array.shape[-1])]
    probs = predict_probabilities(model, slices, contract, config)
    return np.stack([p.argmax(-1) for p in probs], axis=-1).astype(np.uint8)


# === Explanation ===
def explain(
    run: RunDir, config: HealthcareConfig, inputs: list[str], out: Path | None = None
) -> Path:
    """Where the model is unsure: each image with its predicted mask and the per-voxel
    entropy of the class probabilities (high along uncertain borders and missed lesions),
    for the given NIfTI/DICOM inputs or the first test cases."""
    import matplotlib.pyplot as plt

    contract = with_window(run_contract(run))
    model = model_io.load_model(run.model_path)
    if inputs:
        from domains.healthcare import seg_inputs

        cases = []
        for path in inputs:
            item = seg_inputs.read_input(path, config.data.on_nan)
            grid = seg_inputs.model_grid(item.volume, contract)
            array = grid.array if contract["dims"] == 3 else grid.array[..., grid.shape[2] // 2]
            cases.append(SegCase(item.name, array, None, grid.spacing[: array.ndim]))
    else:
        cases = seg_data.load(config, config.runtime.seed).splits["test"]
    cases = cases[: config.explain.examples]
    labels, probs = segment_cases(model, cases, contract, config)
    orient, origin = display_axes(cases[0])
    fig, axes = plt.subplots(2, len(cases), figsize=(2.6 * len(cases), 5.4), squeeze=False)
    for column, (case, label, prob) in enumerate(zip(cases, labels, probs, strict=True)):
        entropy = -(prob * np.log(np.clip(prob, 1e-7, 1))).sum(-1)
        k = None if case.image.ndim == 2 else int(np.argmax((label > 0).sum(axis=(0, 1))))
        pick = (lambda a: a) if k is None else (lambda a, k=k: a[..., k])
        view = seg_data.normalize(pick(case.image), contract["normalize"], contract["window_spec"])
        axes[0, column].imshow(orient(view), cmap="gray", origin=origin)
        axes[0, column].imshow(
            orient(np.ma.masked_equal(pick(label), 0)), cmap="tab10", alpha=0.45, origin=origin
        )
        axes[0, column].set_title(f"{case.id}\nprediction", fontsize=7)
        shown = axes[1, column].imshow(orient(pick(entropy)), cmap="magma", origin=origin)
        axes[1, column].set_title("entropy (nats)", fontsize=7)
        fig.colorbar(shown, ax=axes[1, column], fraction=0.046)
        for ax in axes[:, column]:
            ax.axis("off")
    fig.tight_layout()
    return plots.save(fig, Path(out) if out else run.plots / "explain.png")


# === Model card ===
def write_card(config, run, data: SegData, model, metrics, patch, mode) -> None:
    names = data.label_names
    name = seg_checks.model_name(config)
    write_model_card(
        run,
        title=f"{name} segmentation of {', '.join(names[1:])}",
        summary=f"A {name} ({data.dims}D) trained with Deepfield on "
        f"`{data.spec}` to label {', '.join(names[1:])}, with Dice + cross-entropy and "
        "class-balanced patches; test cases are predicted whole with Gaussian-weighted "
        "sliding windows.",
        data={
            "source": data.spec,
            "labels": ", ".join(names),
            "modality": data.modality or "unknown",
            "normalisation": mode,
            "target spacing (mm)": config.data.spacing or "each case's own",
            **{f"{name} cases": len(cases) for name, cases in data.splits.items()},
        },
        model={
            "architecture": name,
            "options": json.dumps(config.model.options()) or "{}",
            "patch size": "x".join(map(str, patch)),
            "parameters": f"{model.count_params():,}",
        },
        training=training_rows(
            config.train,
            config.runtime,
            **{
                "loss": f"{config.segment.ce_weight} x CE + {config.segment.dice_weight} x "
                "(1 - soft Dice)",
                "foreground patches": config.segment.foreground_fraction,
            },
        ),
        metrics=metrics,
        intended_use="Research and education: delineating the labelled structures in images "
        "like those of the training source. Not a medical device; not for diagnosis or "
        "treatment planning.",
        limitations=[
            "Dice and HD95 are measured on held-out cases of the same source; another "
            "scanner, protocol or population may score lower.",
            "Per class: both masks empty scores Dice 1; a missed or spurious structure "
            "scores Dice 0 and the volume's diagonal as HD95 (counted in "
            "hd95_worst_case_count), never dropped.",
            "Inputs are read in canonical RAS orientation; a mask is written back on its "
            "input's own grid and affine.",
        ],
    )
