"""Driving multi-task: the joint detection + segmentation network on simulated frames,
beside detection-only and segmentation-only models of the same trunk.

`python -m benchmarks.driving_multitask [--frames N] [--epochs E] [--width W]
[--heads joint|detection|segmentation|all] [--seed S] [--data DIR] [--quick]`

Simulates `--frames` highway-env frames (seed 7; simulate's 80% train, 10% validation,
10% test: each frame is its own seeded scene, so test scenes are never trained on; the
validation frames are not used), trains the perception network (ResNet-18 width 32 +
FPN trunk, FCOS head, road/lane head; 160x320 input) from scratch with AdamW and a
cosine schedule on augmented batches, and evaluates the decoded model (in-graph NMS)
on the test frames.

Issue 14's targets on simulated data: `map_50` >= 0.90 for vehicles and `iou_road` >=
0.90; a record's `ratio` is the lower of map_50 / 0.90 and iou_road / 0.90 (the one
that applies for a single head). With all three heads settings (the default outside
quick mode) a `driving_multitask_gain` record compares them: the joint model should be
within 2 points of each single-task model (`ratio` is the lower of joint / (single -
0.02) for map_50 and iou_road) at about half their combined training time
(`compute_share`). Wall times of simulation, training and evaluation are apart.

Measured (2 CPU cores shared with two other trainings; 400 train / 50 test frames, 24
epochs, 3.1 M parameters, about 20 training images/s): joint map_50 0.960 / 0.970
(training seeds 0 / 1), map 0.784 / 0.790, iou_road 0.984 / 0.984, iou_lane 0.72 /
0.72, miou 0.90, in 531 s / 425 s of training; detection only map_50 0.960, map 0.805
(434 s); segmentation only iou_road 0.985, iou_lane 0.73 (435 s). Test frames are few
(about 180 vehicles), so differences of a point are noise.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import record, save_records

TARGET = 0.90
GAIN_MARGIN = 0.02
SIM_SEED = 7
FULL = {"frames": 500, "epochs": 24, "width": 32, "batch_size": 16, "image_size": (160, 320)}
QUICK = {"frames": 40, "epochs": 2, "width": 16, "batch_size": 8, "image_size": (96, 192)}
HEADS = {
    "joint": {"detection": True, "segmentation": True},
    "detection": {"detection": True, "segmentation": False},
    "segmentation": {"detection": False, "segmentation": True},
}


def simulated(folder: Path, frames: int) -> tuple[str, float]:
    """A simulate() set in `folder`: its path and the seconds it took."""
    from domains.driving.simulate import simulate

    start = time.perf_counter()
    simulate(folder, frames, seed=SIM_SEED, progress=False)
    return str(folder), time.perf_counter() - start


def measure(
    data: str,
    *,
    frames: int,
    epochs: int,
    width: int,
    batch_size: int,
    image_size: tuple[int, int],
    heads: str = "joint",
    learning_rate: float = 2e-3,
    seed: int = 0,
    quick: bool = False,
    simulate_s: float | None = None,
) -> dict:
    """Train one head configuration on the simulate() folder `data`, evaluate: a record."""
    from domains.driving.model import PerceptionConfig
    from domains.driving.train_loop import evaluate_perception, train_perception
    from domains.driving.yolo import read_yolo
    from shared.training.settings import TrainConfig

    dataset = read_yolo(data)
    config = PerceptionConfig(
        image_size=image_size, num_classes=dataset.num_classes, width=width, **HEADS[heads]
    )
    train = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
    )
    start = time.perf_counter()
    model, history = train_perception(dataset.splits["train"], config, train, seed=seed)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_perception(model, dataset.splits["test"], config, dataset.class_names)
    evaluate_s = time.perf_counter() - start
    shares = []
    if config.detection:
        shares.append(metrics["map_50"] / TARGET)
    if config.segmentation:
        shares.append(metrics["iou_road"] / TARGET)
    return record(
        f"driving_multitask_{heads}",
        ratio=min(shares),
        target=1.0,
        quick=quick,
        heads=heads,
        frames=frames,
        train_frames=len(dataset.splits["train"]),
        test_frames=len(dataset.splits["test"]),
        epochs=epochs,
        width=width,
        batch_size=batch_size,
        image_size=list(image_size),
        seed=seed,
        params=model.count_params(),
        simulate_s=simulate_s,
        train_s=train_s,
        evaluate_s=evaluate_s,
        train_images_per_s=len(dataset.splits["train"]) * epochs / train_s,
        final_loss=history.history["loss"][-1],
        **metrics,
    )


def gain(records: dict[str, dict]) -> dict:
    """The joint model against the single-task ones (issue 14's multi-task target)."""
    joint, det, seg = records["joint"], records["detection"], records["segmentation"]
    return record(
        "driving_multitask_gain",
        ratio=min(
            joint["map_50"] / (det["map_50"] - GAIN_MARGIN),
            joint["iou_road"] / (seg["iou_road"] - GAIN_MARGIN),
        ),
        target=1.0,
        map_50_joint_minus_detection=joint["map_50"] - det["map_50"],
        map_joint_minus_detection=joint["map"] - det["map"],
        iou_road_joint_minus_segmentation=joint["iou_road"] - seg["iou_road"],
        iou_lane_joint_minus_segmentation=joint["iou_lane"] - seg["iou_lane"],
        compute_share=joint["train_s"] / (det["train_s"] + seg["train_s"]),
        params_share=joint["params"] / (det["params"] + seg["params"]),
    )


def measure_all(
    settings: dict, heads: tuple[str, ...], data: str | None, seed: int, quick: bool
) -> list[dict]:
    """Simulate once (unless `data` is given), then one record per head setting, plus
    the gain record when all three ran."""
    with tempfile.TemporaryDirectory() as tmp:
        simulate_s = None
        if data is None:
            data, simulate_s = simulated(Path(tmp) / "sim", settings["frames"])
        by_heads = {
            h: measure(data, **settings, heads=h, seed=seed, quick=quick, simulate_s=simulate_s)
            for h in heads
        }
    records = list(by_heads.values())
    if set(by_heads) == set(HEADS):
        records.append(gain(by_heads))
    return records


def run(quick: bool) -> list[dict]:
    """For `benchmarks.run_all`: quick, the joint model on tiny settings; otherwise the
    joint and both single-task models and their comparison (about 25 minutes on 2 cores)."""
    heads = ("joint",) if quick else tuple(HEADS)
    return measure_all(QUICK if quick else FULL, heads, None, 0, quick)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--heads", choices=(*HEADS, "all"), help="default: all (joint if --quick)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (not the data's)")
    parser.add_argument("--data", help="an existing simulate() folder instead of simulating")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("frames", "epochs", "width", "batch_size"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    chosen = args.heads or ("joint" if args.quick else "all")
    heads = tuple(HEADS) if chosen == "all" else (chosen,)
    save_records(
        "driving_multitask", measure_all(settings, heads, args.data, args.seed, args.quick)
    )


if __name__ == "__main__":
    main()
