"""The driving domain's data: `--data` specs to split `DetectionSet`s (numpy only).

- `builtin:highway`: `data.frames` frames of the highway-env simulator (seed
  `data.simulate_seed`), rendered once into the cache (`$DEEPFIELD_CACHE`, default
  `~/.cache/deepfield`) and read back as the `yolo:` set it is;
- `yolo:PATH`: the Ultralytics layout (`yolo.read_yolo`), with `masks/` when present;
- `kitti:PATH`: the KITTI object layout (`kitti.read_kitti`, `data.class_map`).

A source's own splits are used as given; the parts it lacks (KITTI has none, many YOLO
sets ship train and val only) are cut from its training frames by the shared splitter,
seeded, with byte-identical images kept in one part and counted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from domains.driving.config import DrivingConfig
from domains.driving.detection_set import DetectionSet, Frame
from shared.data.spec import parse_spec
from shared.data.splits import split_indices
from shared.errors import UserError

LOG = logging.getLogger("deepfield")
SPECS = ("builtin", "yolo", "kitti")
BUILTINS = ("highway",)
SPLITS = ("train", "validation", "test")


def cache_root() -> Path:
    return Path(os.environ.get("DEEPFIELD_CACHE", "~/.cache/deepfield")).expanduser()


def highway_set(frames: int, seed: int) -> Path:
    """The simulated set of `frames` frames at `seed`, rendered once and cached (written
    aside, then renamed into place, so a crash never leaves a half set in the cache)."""
    from domains.driving.simulate import simulate

    target = cache_root() / "driving" / f"highway-v1-n{frames}-s{seed}"
    if (target / "data.yaml").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("builtin:highway: simulating %d frames (seed %d) into %s", frames, seed, target)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        simulate(work, frames, seed=seed, overwrite=True)
        # data.yaml's `path` names the folder the set was written to.
        text = (work / "data.yaml").read_text().replace(str(work.resolve()), str(target.resolve()))
        (work / "data.yaml").write_text(text)
        try:
            os.replace(work, target)
        except OSError:  # another process finished the same set first
            if not (target / "data.yaml").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def read_source(source: str, config: DrivingConfig) -> DetectionSet:
    """The frames of `source`, split as the source ships them."""
    kind, rest = parse_spec(source, SPECS)
    on_corrupt = config.data.on_corrupt
    if kind == "builtin":
        if rest not in BUILTINS:
            raise UserError(f"unknown builtin {rest!r}; driving builtins: {', '.join(BUILTINS)}")
        from domains.driving.yolo import read_yolo

        folder = highway_set(config.data.frames, config.data.simulate_seed)
        found = read_yolo(folder, on_corrupt=on_corrupt)
        found.source = source
        return found
    if kind == "yolo":
        from domains.driving.yolo import read_yolo

        return read_yolo(rest, on_corrupt=on_corrupt)
    from domains.driving.kitti import read_kitti

    return read_kitti(rest, class_map=config.data.class_map, on_corrupt=on_corrupt)


def image_digest(path: str) -> str:
    """The image file's content hash: byte-identical copies are one key for the splitter."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def load(config: DrivingConfig, source: str | None = None) -> tuple[DetectionSet, dict]:
    """The source's frames in train / validation / test, and how they were split."""
    found = read_source(source or config.data.source, config)
    splits = {name: list(found.splits.get(name, [])) for name in SPLITS}
    missing = [name for name in ("validation", "test") if not splits[name]]
    info: dict = {"method": "as shipped" if not missing else f"cut {', '.join(missing)}"}
    if missing:
        pool = splits["train"]
        shares = {"validation": config.data.validation_split, "test": config.data.test_split}
        parts = {name: shares[name] for name in missing}
        if len(pool) < len(parts) + 1:
            raise UserError(
                f"{found.source}: {len(pool)} training frames cannot be split into train and "
                f"{' and '.join(missing)}"
            )
        keys = np.array([image_digest(f.image_path) for f in pool])
        positions, report = split_indices(
            len(pool), parts, config.runtime.seed, keys=keys, what=found.source
        )
        for name in (*missing, "train"):
            splits[name] = [pool[i] for i in positions[name]]
        info.update(seed=config.runtime.seed, duplicates=report.get("duplicates", {}))
    found.splits = splits
    return found, info


def frames_with_masks(frames: list[Frame]) -> bool:
    return bool(frames) and all(f.mask_path is not None for f in frames)


def to_run_classes(found: DetectionSet, run_classes: list[str]) -> None:
    """Renumber `found`'s boxes to a run's class order, by name (a YOLO set's
    `pedestrian, cyclist, vehicle` scores a run trained on KITTI's `vehicle, pedestrian,
    cyclist`); classes the run does not know are an error naming both lists."""
    if found.class_names == list(run_classes):
        return
    unknown = [name for name in found.class_names if name not in run_classes]
    if unknown:
        raise UserError(
            f"{found.source} has classes {found.class_names}; the run was trained on "
            f"{list(run_classes)} ({', '.join(unknown)} unknown): set data.class_map (kitti:) "
            "or use a set with the run's classes"
        )
    order = np.array([run_classes.index(name) for name in found.class_names], np.int32)
    for frame in found.frames():
        frame.classes = order[frame.classes]
    found.class_names = list(run_classes)
