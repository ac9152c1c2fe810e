"""Training and evaluation of the perception network on frames (library functions; the
domain's train/evaluate verbs wrap these with the run directory).

`train_perception` compiles the network with its losses and an AdamW + cosine schedule
from the shared trainer's `make_optimizer`, and fits on augmented batches.
`evaluate_perception` runs the decoded model over frames without augmentation and
scores it in the frames' own pixels: COCO `map` / `map_50` / `map_75` / `ap_50_<class>`
(boxes mapped back out of the letterbox) and `iou_road`, `iou_lane`, `miou` (IoU per
class over every pixel of the split; miou is the mean with background), plus
`frames_per_second` of the decoded model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image

from domains.driving.detection_metrics import CocoResult, Detections, coco_evaluate
from domains.driving.detection_set import Frame
from domains.driving.letterbox import boxes_from_letterbox
from domains.driving.model import (
    PerceptionConfig,
    compile_perception,
    detector,
    perception_model,
)
from domains.driving.pipeline import Augment, PerceptionData, load_sample
from shared.training.settings import TrainConfig
from shared.training.trainer import make_optimizer

# Names of the IoU metrics for mask classes 1 and 2 (simulate.py's mask_names).
MASK_METRICS = {1: "iou_road", 2: "iou_lane"}


def train_perception(
    train_frames: Sequence[Frame],
    config: PerceptionConfig,
    train: TrainConfig,
    *,
    val_frames: Sequence[Frame] | None = None,
    augment: Augment | None = None,
    seed: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 2,
    model: keras.Model | None = None,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Build (or continue `model`), compile and fit; returns the model and its history."""
    keras.utils.set_random_seed(seed)
    data = PerceptionData(train_frames, config)
    steps = max(1, len(data) // train.batch_size)
    model = model or perception_model(config)
    compile_perception(model, config, make_optimizer(train, steps))
    train_ds = data.dataset(train.batch_size, training=True, seed=seed, options=augment)
    val_ds = (
        PerceptionData(val_frames, config).dataset(train.batch_size, training=False)
        if val_frames
        else None
    )
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=train.epochs,
        callbacks=list(callbacks or []),
        verbose=verbose,
    )
    return model, history


def mask_confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """confusion[t, p]: pixels of true class t predicted as p."""
    index = truth.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """IoU per class: TP / (TP + FP + FN); NaN for a class absent from truth and prediction."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def _mask_to_frame(mask: np.ndarray, sample, frame: Frame) -> np.ndarray:
    """A predicted mask in model-input pixels -> the frame's own pixels (nearest)."""
    box = sample.letterbox
    nh, nw = round(box.height * box.scale_y), round(box.width * box.scale_x)
    crop = mask[box.pad_y : box.pad_y + nh, box.pad_x : box.pad_x + nw]
    if crop.shape != (frame.height, frame.width):
        crop = np.asarray(
            Image.fromarray(crop).resize((frame.width, frame.height), Image.Resampling.NEAREST)
        )
    return crop


@dataclass(eq=False)
class Scored:
    """The decoded model's output on frames, in the frames' own pixels."""

    detections: list[Detections]
    confusion: np.ndarray  # mask classes x mask classes, every pixel of the frames
    masks: list[np.ndarray]  # the first `keep_masks` predicted masks
    seconds: float  # in the model (decoding and NMS included), not in loading


def run_detector(
    decoded: keras.Model,
    frames: Sequence[Frame],
    config: PerceptionConfig,
    *,
    batch_size: int = 16,
    keep_masks: int = 0,
) -> Scored:
    """`decoded` (`detector(model, config)`) over `frames`, boxes and masks mapped back
    out of the letterbox into each frame's pixels."""
    # Truth masks are read from their files below; the letterboxed ones are not needed,
    # and frames without masks (predict's inputs) score detection only.
    samples = [load_sample(f, config.image_size, with_mask=False) for f in frames]
    detections: list[Detections] = []
    masks: list[np.ndarray] = []
    confusion = np.zeros((config.num_mask_classes,) * 2, np.int64)
    seconds = 0.0
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = np.stack([s.image for s in chunk]).astype(np.float32)
        begin = time.perf_counter()
        out = decoded.predict_on_batch(images)
        seconds += time.perf_counter() - begin
        for i, sample in enumerate(chunk):
            frame = frames[start + i]
            if config.detection:
                n = int(out["num_detections"][i])
                boxes = boxes_from_letterbox(out["boxes"][i, :n], sample.letterbox)
                detections.append(
                    Detections(
                        boxes, out["scores"][i, :n].astype(np.float32), out["classes"][i, :n]
                    )
                )
            if config.segmentation:
                pred = _mask_to_frame(np.asarray(out["mask"][i]), sample, frame)
                if len(masks) < keep_masks:
                    masks.append(pred)
                if frame.mask_path is not None:
                    with Image.open(frame.mask_path) as im:
                        truth = np.asarray(im)
                    confusion += mask_confusion(truth, pred, config.num_mask_classes)
    return Scored(detections, confusion, masks, seconds)


def scored_metrics(
    scored: Scored, frames: Sequence[Frame], config: PerceptionConfig, class_names
) -> tuple[dict[str, float], CocoResult | None]:
    """COCO detection metrics and mask IoUs of `scored`, and the COCO result (curves)."""
    metrics: dict[str, float] = {"num_examples": len(frames)}
    coco = None
    if config.detection:
        coco = coco_evaluate(frames, scored.detections, class_names)
        metrics.update(coco.metrics())
    if config.segmentation and scored.confusion.sum():
        ious = iou_from_confusion(scored.confusion)
        for k, name in MASK_METRICS.items():
            if k < len(ious):
                metrics[name] = float(ious[k])
        metrics["miou"] = float(np.nanmean(ious))
    metrics["frames_per_second"] = len(frames) / scored.seconds if scored.seconds else float("nan")
    return metrics, coco


def evaluate_perception(
    model: keras.Model,
    frames: Sequence[Frame],
    config: PerceptionConfig,
    class_names: Sequence[str],
    *,
    batch_size: int = 16,
) -> dict[str, float]:
    """Metrics of the trained network (`model`, the training network) on `frames`."""
    scored = run_detector(detector(model, config), frames, config, batch_size=batch_size)
    return scored_metrics(scored, frames, config, class_names)[0]
