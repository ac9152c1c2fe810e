"""`deepfield driving train|evaluate|predict|explain`: the perception network through the
shared trainer and run directory.

train: frames (`data.py`) -> the zoo's `fcos` network with the heads the data allows ->
`shared.training.trainer.fit` (checkpoints, resume, history, TensorBoard) -> the decoded
model (NMS in the graph) scored on the test split in each frame's own pixels: COCO
`map`, `map_50`, `map_75`, `ap_50_<class>`; KITTI R40 AP for `kitti:` data; `iou_road`,
`iou_lane`, `miou`; `frames_per_second`. The run's `inputs.json` records the classes,
mask names, model input size and heads that evaluate, predict, explain and export read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from domains.driving import data as driving_data
from domains.driving.config import DrivingConfig, auto_image_size, segmentation_on
from domains.driving.detection_set import DetectionSet, Frame
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield")
DOMAIN, TASK = "driving", "perception"


# === The run's input contract ===
def perception_config(config: DrivingConfig, details: dict[str, Any]):
    """The network's `PerceptionConfig` from the config and the run's recorded facts."""
    from shared.zoo.fcos import PerceptionConfig

    m = config.model
    return PerceptionConfig(
        image_size=tuple(details["image_size"]),
        num_classes=max(1, len(details["classes"])),
        num_mask_classes=len(details["mask_names"]),
        detection=m.detection,
        segmentation=bool(details["segmentation"]),
        depth=m.depth,
        width=m.width,
        fpn_channels=m.fpn_channels,
        head_convs=m.head_convs,
        seg_channels=m.seg_channels,
        strides=tuple(m.strides),
        detection_weight=m.detection_weight,
        segmentation_weight=m.segmentation_weight,
        dice_weight=m.dice_weight,
        score_threshold=m.score_threshold,
        iou_threshold=m.iou_threshold,
        max_detections=m.max_detections,
        pre_nms_top_k=m.pre_nms_top_k,
    )


def run_details(run: RunDir) -> dict[str, Any]:
    """classes, mask_names, image_size and segmentation of a trained run."""
    contract = InputContract.read(run)
    return {"classes": list(contract.classes or []), **contract.details}


def record_data(run: RunDir, found: DetectionSet, info: dict, details: dict[str, Any]) -> None:
    run.write_splits(
        found.source,
        {name: len(frames) for name, frames in found.splits.items()},
        boxes={name: int(sum(len(f.boxes) for f in frs)) for name, frs in found.splits.items()},
        report=found.report,
        notes=found.notes,
        **info,
    )
    h, w = details["image_size"]
    InputContract(
        DOMAIN,
        TASK,
        [
            InputSpec(
                "image",
                "uint8",
                [None, None, 3],
                f"an RGB frame of any size, letterboxed (grey 114) into {h}x{w}",
            )
        ],
        classes=list(found.class_names),
        details={k: v for k, v in details.items() if k != "classes"},
    ).write(run)


# === Training ===
def train(config: DrivingConfig, run: RunDir) -> dict[str, Any]:
    from shared.training.trainer import runtime_scope

    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def _train(config: DrivingConfig, run: RunDir) -> dict[str, Any]:
    from domains.driving.model import compile_perception
    from domains.driving.pipeline import Augment, PerceptionData
    from shared import model_io
    from shared.distribute import select_strategy
    from shared.training.trainer import fit, make_optimizer
    from shared.zoo.fcos import perception_model

    strategy = select_strategy(config.runtime)
    found, info = driving_data.load(config)
    train_frames = found.splits["train"]
    masks = driving_data.frames_with_masks(found.frames())
    segmentation = segmentation_on(config, masks)
    if not segmentation and config.model.segmentation == "auto":
        LOG.info("%s has no masks for every frame: training detection only", found.source)
    if not config.model.detection and not segmentation:
        raise UserError(
            "model.detection is off and the data has no masks: nothing to train "
            "(turn detection on, or bring masks/)"
        )
    size = config.data.image_size
    if size == "auto":
        size = auto_image_size([(f.height, f.width) for f in train_frames], config.data.max_side)
    details = {
        "classes": list(found.class_names),
        "mask_names": list(found.mask_names),
        "image_size": [int(size[0]), int(size[1])],
        "segmentation": segmentation,
        "detection": config.model.detection,
        "source": found.source,
    }
    record_data(run, found, info, details)
    perception = perception_config(config, details)
    LOG.info(
        "%s: %s frames, model input %dx%d, heads: %s",
        found.source,
        {k: len(v) for k, v in found.splits.items()},
        *size,
        " + ".join(
            h for h, on in (("detection", perception.detection), ("mask", segmentation)) if on
        ),
    )

    batch = min(config.train.batch_size, len(train_frames))
    augment = Augment(flip=config.data.flip, scale=config.data.scale, color=config.data.color)
    seed = config.runtime.seed
    train_ds = PerceptionData(train_frames, perception).dataset(
        batch, training=True, seed=seed, options=augment
    )
    val_frames = found.splits["validation"]
    val_ds = PerceptionData(val_frames, perception).dataset(batch, training=False)
    steps = max(1, len(train_frames) // batch)
    capped = config.train.capped(steps)
    if capped.epochs < config.train.epochs:
        LOG.info(
            "train.max_steps %d: %d epochs of %d steps", capped.max_steps, capped.epochs, steps
        )
    with strategy.scope():
        model = perception_model(perception)
        compile_perception(model, perception, make_optimizer(capped, steps))
    fit(model, train_ds, val_ds, run=run, train=capped)
    model_io.save_model(model, run.model_path)
    model = model_io.load_model(run.model_path)  # evaluate what users will load
    metrics = score(model, perception, found, "test", run, None, plots=True)
    from shared import plots
    from shared.training.trainer import history_rows

    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, found, model, metrics, details)
    return metrics


# === Evaluation ===
def score(
    model,
    perception,
    found: DetectionSet,
    split: str,
    run: RunDir,
    out: Path | None,
    *,
    plots: bool,
) -> dict[str, Any]:
    """Metrics of `split` (metrics.json, or `out`), and the plots of what was scored."""
    from domains.driving import plots as driving_plots
    from domains.driving.train_loop import run_detector, scored_metrics
    from shared.zoo.fcos import detector

    frames = found.splits.get(split) or []
    if not frames:
        raise UserError(f"{found.source} has no {split} frames")
    keep = 4 if plots else 0
    scored = run_detector(detector(model, perception), frames, perception, keep_masks=keep)
    metrics, coco = scored_metrics(scored, frames, perception, found.class_names)
    if perception.detection and found.source.startswith("kitti:"):
        from domains.driving.kitti_metrics import kitti_ap

        metrics.update(kitti_ap(frames, scored.detections, found.class_names))
    metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
    metrics.update(split=split, task=TASK, domain=DOMAIN)
    run.write_metrics(metrics, path=out)
    if plots:
        driving_plots.frames_grid(
            frames[:keep],
            scored.detections[:keep] if perception.detection else None,
            scored.masks,
            found.class_names,
            run.plots / "detections.png",
        )
        if coco is not None:
            driving_plots.precision_recall(coco, run.plots / "precision_recall.png")
    return metrics


def evaluate(
    run: RunDir, config: DrivingConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Score a finished run on a split of its data, or on every frame of `source` when
    that source ships no splits of its own (KITTI's training folder, a flat YOLO set)."""
    from shared import model_io

    details = run_details(run)
    if source:
        found = driving_data.read_source(source, config)
        driving_data.to_run_classes(found, details["classes"])
        if split not in found.splits or set(found.splits) == {"train"}:
            found.splits = {"all": found.frames()}
            split = "all"
    else:
        found, _ = driving_data.load(config)
    perception = perception_config(config, details)
    if perception.segmentation and not driving_data.frames_with_masks(found.splits[split]):
        LOG.info("%s has no masks: scoring detection only", found.source)
    model = model_io.load_model(run.model_path)
    return score(model, perception, found, split, run, out, plots=out is None)


# === Prediction and explanation ===
def _frames_of(inputs: list[str]) -> list[Frame]:
    from domains.driving.detection_set import inspect_image

    frames = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.is_file():
            raise UserError(f"{item}: no such image file")
        info = inspect_image(str(path))
        if info.problem:
            raise UserError(f"{item}: {info.problem}")
        frames.append(Frame(str(path), info.height, info.width))
    return frames


def predict(run: RunDir, config: DrivingConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """Per image: its detections (label, score, box in its own pixels) and, with the mask
    head, the share of its pixels in each mask class."""
    from domains.driving.train_loop import run_detector
    from shared import model_io
    from shared.zoo.fcos import detector

    if not inputs:
        raise UserError("predict needs image files (PNG or JPEG)")
    details = run_details(run)
    perception = perception_config(config, details)
    frames = _frames_of(inputs)
    model = model_io.load_model(run.model_path)
    scored = run_detector(detector(model, perception), frames, perception, keep_masks=len(frames))
    names = details["classes"]
    results = []
    for i, (item, frame) in enumerate(zip(inputs, frames, strict=True)):
        result: dict[str, Any] = {"input": item, "width": frame.width, "height": frame.height}
        if perception.detection:
            det = scored.detections[i]
            result["detections"] = [
                {
                    "label": names[int(c)],
                    "score": round(float(s), 4),
                    "box": [round(float(v), 1) for v in b],
                }
                for b, s, c in zip(det.boxes, det.scores, det.classes, strict=True)
            ]
        if perception.segmentation:
            mask = scored.masks[i]
            result["mask_share"] = {
                name: round(float((mask == k).mean()), 4)
                for k, name in enumerate(details["mask_names"])
            }
        results.append(result)
    return results


def explain(run: RunDir, config: DrivingConfig, inputs: list[str], out: Path | None) -> Path:
    """Grad-CAM of each frame's top detection (the inputs, or test frames of the run's
    data): which pixels of its pyramid level drove that detection's class score."""
    from domains.driving.explain import detection_gradcam_grid
    from shared import model_io

    details = run_details(run)
    perception = perception_config(config, details)
    if not perception.detection:
        raise UserError("explain shows Grad-CAM of detections; this run has no detection head")
    if inputs:
        frames = _frames_of(inputs)
    else:
        found, _ = driving_data.load(config)
        frames = found.splits["test"][: config.explain.examples]
    model = model_io.load_model(run.model_path)
    target = Path(out) if out else run.plots / "gradcam.png"
    return detection_gradcam_grid(model, perception, frames, details["classes"], target)


# === Model card ===
def write_card(config, run, found: DetectionSet, model, metrics, details) -> None:
    import json

    from shared.model_card import training_rows, write_model_card

    h, w = details["image_size"]
    heads = "detection + road/lane mask" if details["segmentation"] else "detection"
    if not config.model.detection:
        heads = "road/lane mask"
    write_model_card(
        run,
        title=f"FCOS multi-task perception ({heads})",
        summary=f"A ResNet-{config.model.depth} + FPN network with {heads} heads, trained "
        f"with Deepfield on `{found.source}`.",
        data={
            "source": found.source,
            "classes": ", ".join(found.class_names),
            "mask classes": ", ".join(details["mask_names"]) if details["segmentation"] else "-",
            "model input": f"{h}x{w} (letterboxed)",
            **{f"{name} frames": len(frames) for name, frames in found.splits.items()},
            "repairs": json.dumps({k: v for k, v in found.report.items() if v}),
        },
        model={
            "architecture": "fcos (shared.zoo.fcos)",
            "options": json.dumps(config.model.model_dump()),
            "parameters": f"{model.count_params():,}",
        },
        training=training_rows(
            config.train, config.runtime, **{"max steps": config.train.max_steps}
        ),
        metrics=metrics,
        intended_use="Research and education: detecting vehicles (and road and lane "
        "markings) in frames like those of the training source. Not a driving system.",
        limitations=[
            "Figures are measured on held-out frames of the same source; another camera, "
            "weather or country may score much lower.",
            "builtin:highway is a top-down simulator: a model trained on it does not "
            "transfer to camera images.",
            "Grad-CAM maps show where a pyramid level's features drove a detection's class "
            "score, not a causal explanation.",
        ],
    )


# === Export ===
def _example_images(config: DrivingConfig, limit: int = 4) -> list[bytes]:
    """Encoded test frames of the run's data: the export's warmup requests."""
    found, _ = driving_data.load(config)
    frames = (found.splits["test"] or found.frames())[:limit]
    return [Path(f.image_path).read_bytes() for f in frames]


def serving_spec(run: RunDir, config: DrivingConfig):
    """The SavedModel of a finished run (`serving.PerceptionServing`): encoded images of
    any size in; boxes, scores, classes, labels, num_detections and the mask in each
    image's own pixels out; warmed up with test frames of the run's data."""
    from domains.driving.serving import perception_serving_spec
    from shared import model_io

    details = run_details(run)
    perception = perception_config(config, details)
    return perception_serving_spec(
        model_io.load_model(run.model_path),
        perception,
        details["classes"],
        details["mask_names"] if perception.segmentation else None,
        _example_images(config),
        metadata={"run": str(run.path.resolve()), "data": details.get("source")},
    )


def export_tflite(
    run: RunDir, config: DrivingConfig, to: Path, name: str, quantize: str, overwrite: bool
) -> dict[str, Any]:
    """`to/name.tflite` and its `.json` report: the network with dense decoding (every
    location's box and score); non-maximum suppression is the caller's
    (`serving_tflite.decode_detections`, documented in the report)."""
    from domains.driving.serving_tflite import export_tflite as write_tflite
    from shared import model_io

    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file; give a folder")
    target = to / f"{name}.tflite"
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite or another --name")
    if quantize not in ("none", "dynamic", "float16"):
        raise UserError(f"--quantize {quantize}: driving's TFLite takes none, dynamic or float16")
    details = run_details(run)
    perception = perception_config(config, details)
    to.mkdir(parents=True, exist_ok=True)
    return write_tflite(
        model_io.load_model(run.model_path),
        perception,
        target,
        details["classes"],
        details["mask_names"] if perception.segmentation else None,
        quantize=quantize,
    )
