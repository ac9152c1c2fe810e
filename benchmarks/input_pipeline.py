"""Input pipeline: `image_dataset` over a folder of JPEGs vs a naive PIL loop.

Both read the same train-split files in a shuffled order and produce float32 batches of 64.
The pipeline's first epoch decodes every file (and fills its in-memory cache); its second
epoch reads the cache, so it is reported separately. The target is on the first epoch,
the cost a run pays before the cache helps. `load_image_data`'s scan of the folder (which
also decodes every file, to catch corrupt ones) is a one-off cost, reported on its own.

An epoch's images/s runs to its last batch. Dropping the iterator afterwards can block
in TF 2.21 until tf.data's autotune thread next wakes (its period doubles from 10 ms), so
that teardown is timed separately and `*_with_teardown` fields include it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from benchmarks.common import median, record
from shared.data import image_dataset, load_image_data

NAME = "input_pipeline"
TARGET = 5.0  # pipeline first-epoch images/s over the naive loop's
BATCH_SIZE = 64
IMAGE_SIDE = 64
NUM_CLASSES = 10
IMAGE_FORMAT = "jpeg"


def make_image_folder(root: Path, num_images: int, seed: int = 0) -> None:
    """Write `num_images` 64x64 RGB JPEGs into one sub-folder per class under `root`.

    Images are smooth random colour fields plus noise, so they compress like photos rather
    than like pure noise (which would make JPEG decoding unrepresentatively slow).
    """
    rng = np.random.default_rng(seed)
    for index in range(num_images):
        label = index % NUM_CLASSES
        folder = root / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR), np.int16)
        noisy = smooth + rng.integers(-12, 13, smooth.shape, dtype=np.int16)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        image.save(folder / f"{index:05d}.jpg", quality=90)


def naive_epoch(paths: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> int:
    """One shuffled epoch the obvious way: PIL open, to numpy, stack per batch; returns count."""
    order = rng.permutation(len(paths))
    seen = 0
    for start in range(0, len(order), BATCH_SIZE):
        indices = order[start : start + BATCH_SIZE]
        arrays = []
        for i in indices:
            with Image.open(paths[i]) as image:
                arrays.append(np.asarray(image.convert("RGB")))
        batch = np.stack(arrays).astype(np.float32)
        batch_labels = labels[indices].astype(np.int32)
        seen += min(len(batch), len(batch_labels))
    return seen


def timed_epoch(ds: tf.data.Dataset) -> tuple[float, float, int]:
    """(seconds to the last batch, seconds once the iterator is gone, images) of one epoch."""
    start = time.perf_counter()
    iterator = iter(ds)
    count = 0
    for _, labels in iterator:
        count += int(labels.shape[0])
    last_batch = time.perf_counter() - start
    del iterator
    return last_batch, time.perf_counter() - start, count


def run(quick: bool) -> list[dict]:
    """Time the naive loop and the pipeline alternately; ratio of median images/s."""
    num_images, repeats = (300, 2) if quick else (2000, 5)
    with tempfile.TemporaryDirectory(prefix="deepfield-bench-images-") as tmp:
        root = Path(tmp)
        make_image_folder(root, num_images)
        start = time.perf_counter()
        data = load_image_data(f"folder:{root}")
        scan_s = time.perf_counter() - start
        part = data.splits["train"]
        n = len(part)

        rng = np.random.default_rng(1)
        timed_epoch(image_dataset(data, "train", BATCH_SIZE, shuffle=True))  # warm-up
        naive_epoch(part.paths, part.labels, rng)
        naive_s: list[float] = []
        # "first"/"cached" epochs -> (to last batch, with teardown) samples
        pipe_s: dict[str, tuple[list[float], list[float]]] = {
            "first": ([], []),
            "cached": ([], []),
        }
        for _ in range(repeats):  # interleaved, so drift on a shared machine hits both
            start = time.perf_counter()
            seen = naive_epoch(part.paths, part.labels, rng)
            naive_s.append(time.perf_counter() - start)
            ds = image_dataset(data, "train", BATCH_SIZE, shuffle=True)  # fresh, empty cache
            for epoch in ("first", "cached"):
                last_batch, with_teardown, count = timed_epoch(ds)
                pipe_s[epoch][0].append(last_batch)
                pipe_s[epoch][1].append(with_teardown)
                if seen != n or count != n:
                    raise RuntimeError(f"expected {n} images an epoch; naive {seen}, ours {count}")

    naive_ips = n / median(naive_s)
    ips = {epoch: n / median(last) for epoch, (last, _) in pipe_s.items()}
    ips_teardown = {epoch: n / median(full) for epoch, (_, full) in pipe_s.items()}
    return [
        record(
            NAME,
            quick=quick,
            images=n,
            image_shape=[IMAGE_SIDE, IMAGE_SIDE, 3],
            image_format=IMAGE_FORMAT,
            batch_size=BATCH_SIZE,
            repeats=repeats,
            scan_seconds=scan_s,
            scan_images_per_s=num_images / scan_s,
            naive_images_per_s=naive_ips,
            pipeline_first_epoch_images_per_s=ips["first"],
            pipeline_cached_epoch_images_per_s=ips["cached"],
            pipeline_first_epoch_images_per_s_with_teardown=ips_teardown["first"],
            pipeline_cached_epoch_images_per_s_with_teardown=ips_teardown["cached"],
            ratio_cached_epoch=ips["cached"] / naive_ips,
            ratio_with_teardown=ips_teardown["first"] / naive_ips,
            naive_epoch_seconds=naive_s,
            pipeline_first_epoch_seconds=pipe_s["first"][0],
            pipeline_cached_epoch_seconds=pipe_s["cached"][0],
            pipeline_first_epoch_seconds_with_teardown=pipe_s["first"][1],
            pipeline_cached_epoch_seconds_with_teardown=pipe_s["cached"][1],
            ratio=ips["first"] / naive_ips,
            target=TARGET,
        )
    ]
