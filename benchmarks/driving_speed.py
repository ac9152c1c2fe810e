"""Driving speed: the exported detector beside the in-process Keras model, and the
perception network's training beside its bare ResNet-18 backbone.

`python -m benchmarks.driving_speed [--quick] [--frames N] [--image-size H W]
[--batch-size B] [--repeats R] [--score-threshold T]`

Issue 14's speed figures (informative: no target, `target` is None). One simulated set
(`driving.simulate`, seed 7, frames at the model's input size, so letterboxing is
a copy) feeds both halves:

Training (`driving_speed_training`): the perception network (ResNet-18 width 32 + FPN 64,
FCOS head, road/lane head; 160x320) compiled with the multitask losses
(`compile_perception`) and `fit` on `PerceptionData` batches of the train split
(augmentation and FCOS target assignment in the tf.data generator, as `driving train`
does), beside a plain Keras classifier made of the same backbone (the zoo's
`resnet_backbone`, same depth, width, stem and input normalisation) + global average
pooling + Dense, `fit` on the same letterboxed images with random labels; both with
AdamW (lr 2e-3, weight decay 1e-4), the same batch size and input size. Each side gets
two untimed warm-up epochs (the trace, then the retrace of a new iterator), then the
sides alternate, one epoch each, for `rounds` rounds. images/s = batch / median step
time (`common.StepTimer`: the step's data fetch included); the epochs' wall-clock
rates are in the record too. `ratio` = perception / backbone images/s: the median over
rounds of each round's pair of epochs (`round_ratios`; `ratio_of_medians` beside it),
so load that changes between rounds cancels out. It says what the FPN, the heads,
their losses and the target pipeline cost over the bare backbone.

Inference (`driving_speed_inference_b1`, `_b16`): the network trained above, on the
held-out frames (validation + test splits, cycled up to the batch). Its weights are
barely trained (the training half's few dozen steps), and such a network still scores
most locations above the decode's default 0.05 threshold (measured: 905 of 1050
locations per frame at the default sizes, so NMS would get all 1000 pre-NMS candidates
and every frame would fill its 100 detections). So the threshold is calibrated instead:
set (never below 0.05) so that NMS is given as many candidates per frame as the FCOS
assigner marks positive on those frames (centre sampling, up to 3x3 locations per
object: what a trained head fires on); `--score-threshold` sets it by hand. The record
gives the threshold, the candidates NMS got, the detections per frame after it, the
true boxes per frame, and the candidates the default threshold would have passed.
The paths timed:

- in-process: `detector(model, config).predict_on_batch` on letterboxed float32
  batches (decoding and NMS in the graph; the PNG decode and letterbox done before,
  untimed: this is what `driving evaluate` times as frames_per_second);
- in-process with decode: the same plus PIL decode and `letterbox.letterbox_image` of
  the PNG bytes, timed (no boxes or masks mapped back to image pixels: the export does);
- exported: `perception_serving_spec` written by `export_saved_model` (not verified in
  a fresh process: the tests do that), `tf.saved_model.load`, `serving_default` on the
  encoded PNG bytes (decode, letterbox, network, NMS, boxes and mask mapped back to
  image pixels, all in the graph).

Two warm-up calls each, then `repeats` rounds in which the paths take turns; frames/s =
batch / median seconds. `ratio` = exported / in-process (predict_on_batch) frames/s,
the median over rounds of each round's pair of calls (`ratio_of_medians` beside it):
on a shared machine the load changes within a run, and pairing cancels that out.
`ratio_vs_keras_with_decode` (paired the same way) compares like with like.

Measured (2 AMD EPYC cores shared with other work, load average 3.3-3.9; default
settings, 80 s in all): inference at batch 1, Keras 72.5 frames/s, Keras with PNG decode
69.5, exported 64.9 (ratio 0.89, 0.94 against Keras with decode); at batch 16, 106,
98.1 and 92.4 frames/s (ratio 0.88, 0.95); threshold calibrated to 0.30, 13.4
candidates and 5.1 detections per frame for 3.9 true boxes (905 candidates at 0.05).
Training at batch 16: perception 33.0 images/s, bare backbone 61.3 (ratio 0.50; the
four rounds' ratios 0.32-0.73: the load moves between epochs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np

from benchmarks.common import StepTimer, median, record, save_records, without_autotune

NAME = "driving_speed"
SIM_SEED = 7
LEARNING_RATE, WEIGHT_DECAY = 2e-3, 1e-4
CLASSIFIER_CLASSES = 10
FULL = {
    "frames": 120,
    "image_size": (160, 320),
    "width": 32,
    "fpn_channels": 64,
    "batch_size": 16,
    "batches": (1, 16),
    "rounds": 4,
    "repeats": 11,
}
QUICK = {
    "frames": 24,
    "image_size": (64, 128),
    "width": 8,
    "fpn_channels": 16,
    "batch_size": 4,
    "batches": (1, 4),
    "rounds": 1,
    "repeats": 2,
}


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --------------------------------------------------------------------------- training


def backbone_classifier(config, num_classes: int):
    """The perception network's backbone (same normalisation, depth, width and stem)
    as a plain classifier: global average pooling and one Dense layer."""
    import keras

    from shared.zoo.resnet import resnet_backbone

    h, w = config.image_size
    image = keras.Input((h, w, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(image)
    x = resnet_backbone((h, w, 3), depth=config.depth, width=config.width, stem="imagenet")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(image, logits, name="backbone_classifier")


def _optimizer():
    import keras

    return keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)


def _epoch(model, data, times: list[float], walls: list[float]) -> None:
    """One `fit` epoch; its step times appended to `times`, its wall time to `walls`."""
    timer = StepTimer()
    start = time.perf_counter()
    model.fit(data, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    walls.append(time.perf_counter() - start)
    times.extend(timer.times)


def measure_training(config, train_frames, batch_size: int, rounds: int, seed: int = 0):
    """Both models trained side by side; returns (the perception model, its fields)."""
    import keras
    import tensorflow as tf

    from domains.driving.model import compile_perception, perception_model
    from domains.driving.pipeline import PerceptionData

    keras.utils.set_random_seed(seed)
    data = PerceptionData(train_frames, config)
    steps = len(data) // batch_size
    if steps < 1:
        raise ValueError(f"{len(data)} training frames, fewer than one batch of {batch_size}")
    perception = perception_model(config)
    compile_perception(perception, config, _optimizer())
    perception_ds = without_autotune(data.dataset(batch_size, training=True, seed=seed))

    images = np.stack([s.image for s in data.samples]).astype(np.float32)
    labels = np.random.default_rng(seed).integers(0, CLASSIFIER_CLASSES, len(images))
    classifier = backbone_classifier(config, CLASSIFIER_CLASSES)
    classifier.compile(
        optimizer=_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier_ds = without_autotune(
        tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
        .batch(batch_size, drop_remainder=True)
        .prefetch(2)
    )

    sides = {"perception": (perception, perception_ds), "backbone": (classifier, classifier_ds)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    start = time.perf_counter()
    for model, ds in sides.values():  # the trace, then the new iterator's retrace
        _epoch(model, ds, [], [])
        _epoch(model, ds, [], [])
    warmup_s = time.perf_counter() - start
    paired = []  # per round: perception images/s over backbone images/s, each epoch's median
    for _ in range(rounds):
        for name, (model, ds) in sides.items():
            _epoch(model, ds, times[name], walls[name])
        paired.append(median(times["backbone"][-steps:]) / median(times["perception"][-steps:]))

    step = {name: median(t) for name, t in times.items()}
    rate = {name: batch_size / s for name, s in step.items()}
    wall_rate = {name: steps * batch_size * len(w) / sum(w) for name, w in walls.items()}
    fields = {
        "train_frames": len(data),
        "steps_per_epoch": steps,
        "timed_steps": len(times["perception"]),
        "warmup_s": warmup_s,
        "perception_params": perception.count_params(),
        "backbone_params": classifier.count_params(),
        "perception_step_s": step["perception"],
        "backbone_step_s": step["backbone"],
        "perception_images_per_s": rate["perception"],
        "backbone_images_per_s": rate["backbone"],
        "perception_epoch_images_per_s": wall_rate["perception"],
        "backbone_epoch_images_per_s": wall_rate["backbone"],
        "round_ratios": paired,
        "ratio_of_medians": rate["perception"] / rate["backbone"],
        "ratio": median(paired),
    }
    return perception, fields


# --------------------------------------------------------------------------- inference


def _best_scores(model, images: np.ndarray) -> np.ndarray:
    """(frames, locations) best class score of every location, as the decode ranks them:
    sqrt(sigmoid(class) * sigmoid(centerness))."""
    raw = model.predict_on_batch(images)
    scores = np.sqrt(_sigmoid(raw["class_logits"]) * _sigmoid(raw["centerness_logits"]))
    return scores.max(axis=-1)


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _positives_per_frame(config, samples) -> float:
    """Mean number of locations the FCOS assigner marks positive (centre sampling,
    radius 1.5 strides: up to 3x3 per object): what a trained head fires on."""
    from domains.driving.targets import FCOSAssigner

    assigner = FCOSAssigner(config.levels, config.num_classes)
    counts = [
        int((assigner.assign(s.boxes, s.classes, s.ignore)[0].max(axis=1) > 0).sum())
        for s in samples
    ]
    return float(np.mean(counts))


def calibrated_threshold(scores: np.ndarray, per_frame: float, floor: float) -> float:
    """The score above which `per_frame` locations per frame lie on average (never below
    `floor`, the config's threshold)."""
    ranked = np.sort(scores.ravel())[::-1]
    index = min(len(ranked) - 1, round(per_frame * len(scores)))
    return max(floor, float(ranked[index]))


def measure_inference(
    model, config, frames, class_names, mask_names, batches, repeats, score_threshold=None
):
    """One dict of fields per batch size: frames/s of each path and the NMS load.

    The decode's score threshold is `score_threshold`, or by default calibrated on the
    frames so that NMS is given as many candidates per frame as the FCOS assigner marks
    positive on them (a briefly trained network still scores most locations above the
    default 0.05, which would hand NMS all 1000 pre-NMS candidates and fill every
    frame's 100 detections)."""
    import tensorflow as tf
    from PIL import Image

    from domains.driving.letterbox import letterbox_image
    from domains.driving.model import detector
    from domains.driving.pipeline import load_sample
    from domains.driving.serving import perception_serving_spec
    from shared.export import export_saved_model

    largest = max(batches)
    chosen = [frames[i % len(frames)] for i in range(largest)]
    pngs = [Path(f.image_path).read_bytes() for f in chosen]
    samples = [load_sample(f, config.image_size, with_mask=False) for f in chosen]
    floats = np.stack([s.image for s in samples]).astype(np.float32)
    scores = _best_scores(model, floats)
    positives = _positives_per_frame(config, samples)
    over_default = (scores > config.score_threshold).sum(axis=1)
    default_candidates = float(np.minimum(over_default, config.pre_nms_top_k).mean())
    if score_threshold is None:
        score_threshold = calibrated_threshold(scores, positives, config.score_threshold)
    config = replace(config, score_threshold=float(score_threshold))
    candidates = np.minimum((scores > config.score_threshold).sum(axis=1), config.pre_nms_top_k)
    decoded = detector(model, config)

    with tempfile.TemporaryDirectory(prefix="deepfield-bench-driving-speed-") as tmp:
        start = time.perf_counter()
        spec = perception_serving_spec(model, config, class_names, mask_names, pngs[:2])
        result = export_saved_model(spec, tmp, "perception", verify=False)
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(str(result.path))
        serve = loaded.signatures["serving_default"]

        def keras_path(n: int):
            return decoded.predict_on_batch(floats[:n])

        def keras_with_decode(n: int):
            batch = []
            for data in pngs[:n]:
                with Image.open(BytesIO(data)) as im:
                    batch.append(
                        letterbox_image(np.asarray(im.convert("RGB")), config.image_size)[0]
                    )
            return decoded.predict_on_batch(np.stack(batch).astype(np.float32))

        def exported(n: int):
            return serve(image_bytes=tf.constant(pngs[:n]))

        paths = {"keras": keras_path, "keras_with_decode": keras_with_decode, "exported": exported}
        out = []
        for n in batches:
            for fn in paths.values():
                fn(n)
                fn(n)
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(repeats):
                for name, fn in paths.items():
                    begin = time.perf_counter()
                    fn(n)
                    samples[name].append(time.perf_counter() - begin)
            fps = {name: n / median(s) for name, s in samples.items()}
            keras_dets = np.asarray(keras_path(n)["num_detections"])
            served_dets = np.asarray(exported(n)["num_detections"])
            out.append(
                {
                    "batch": n,
                    "keras_frames_per_s": fps["keras"],
                    "keras_with_decode_frames_per_s": fps["keras_with_decode"],
                    "exported_frames_per_s": fps["exported"],
                    "keras_seconds": samples["keras"],
                    "keras_with_decode_seconds": samples["keras_with_decode"],
                    "exported_seconds": samples["exported"],
                    "ratio_vs_keras_with_decode": median(
                        k / e
                        for k, e in zip(
                            samples["keras_with_decode"], samples["exported"], strict=True
                        )
                    ),
                    "true_boxes_per_frame": float(np.mean([len(f.boxes) for f in chosen[:n]])),
                    "positives_per_frame": positives,
                    "score_threshold": config.score_threshold,
                    "candidates_per_frame": float(candidates[:n].mean()),
                    "candidates_at_default_threshold": default_candidates,
                    "detections_per_frame": float(keras_dets.mean()),
                    "exported_detections_per_frame": float(served_dets.mean()),
                    "export_s": export_s,
                    "ratio_of_medians": fps["exported"] / fps["keras"],
                    # Paired per round, so load drift during the rounds cancels out.
                    "ratio": median(
                        k / e for k, e in zip(samples["keras"], samples["exported"], strict=True)
                    ),
                }
            )
    return out


# --------------------------------------------------------------------------- together


def measure_all(settings: dict, quick: bool) -> list[dict]:
    from domains.driving.model import PerceptionConfig
    from domains.driving.simulate import simulate
    from domains.driving.yolo import read_yolo

    h, w = settings["image_size"]
    load_start = _load()
    with tempfile.TemporaryDirectory(prefix="deepfield-bench-driving-sim-") as tmp:
        start = time.perf_counter()
        simulate(
            Path(tmp) / "sim", settings["frames"], seed=SIM_SEED, progress=False, image_size=(w, h)
        )
        simulate_s = time.perf_counter() - start
        dataset = read_yolo(Path(tmp) / "sim")
        config = PerceptionConfig(
            image_size=(h, w),
            num_classes=dataset.num_classes,
            width=settings["width"],
            fpn_channels=settings["fpn_channels"],
        )
        held_out = dataset.splits.get("validation", []) + dataset.splits.get("test", [])
        model, training = measure_training(
            config, dataset.splits["train"], settings["batch_size"], settings["rounds"]
        )
        inference = measure_inference(
            model,
            config,
            held_out or dataset.splits["train"],
            dataset.class_names,
            dataset.mask_names,
            settings["batches"],
            settings["repeats"],
            settings.get("score_threshold"),
        )
    common = {
        "quick": quick,
        "frames": settings["frames"],
        "image_size": [h, w],
        "depth": config.depth,
        "width": config.width,
        "fpn_channels": config.fpn_channels,
        "simulate_s": simulate_s,
        "load_before": load_start,
        "load_after": _load(),
    }
    records = []
    for fields in inference:
        ratio = fields.pop("ratio")
        records.append(
            record(
                f"{NAME}_inference_b{fields['batch']}",
                ratio=ratio,
                target=None,
                **common,
                held_out_frames=len(held_out),
                repeats=settings["repeats"],
                **fields,
            )
        )
    ratio = training.pop("ratio")
    records.append(
        record(
            f"{NAME}_training",
            ratio=ratio,
            target=None,
            **common,
            batch_size=settings["batch_size"],
            rounds=settings["rounds"],
            optimizer=f"AdamW lr {LEARNING_RATE} wd {WEIGHT_DECAY}",
            **training,
        )
    )
    return records


def run(quick: bool) -> list[dict]:
    """For `benchmarks.run_all`: batch 1 and 16 inference records and a training record
    (quick: a 64x128 width-8 network on 24 frames, batch 1 and 4)."""
    return measure_all(QUICK if quick else FULL, quick)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.driving_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    parser.add_argument("--frames", type=int, help="simulated frames (80%% train, 20%% held out)")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="model input, multiples of 32 (frames are simulated at that size)",
    )
    parser.add_argument("--batch-size", type=int, help="training batch size")
    parser.add_argument("--repeats", type=int, help="timed inference rounds")
    parser.add_argument(
        "--score-threshold",
        type=float,
        help="the decode's score threshold (default: calibrated, see the docstring)",
    )
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("frames", "image_size", "batch_size", "repeats", "score_threshold"):
        if getattr(args, key) is not None:
            settings[key] = tuple(args.image_size) if key == "image_size" else getattr(args, key)
    save_records(NAME, measure_all(settings, args.quick))


if __name__ == "__main__":
    main()
