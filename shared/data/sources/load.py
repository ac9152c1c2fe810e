"""Turn a data spec into an `ImageData` with train/validation/test splits.

A loader (one module per scheme) returns the splits its source ships; the splits it does
not ship are cut from the train pool by the one seeded splitter (`shared.data.splits`),
stratified by label, with exact duplicate images kept in one split. `split_info` records
which split came from where and what duplicates were found, so a run directory says
exactly how its data were divided.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from shared.data.sources.arrays import array_source
from shared.data.sources.base import (
    COLOR_MODES,
    SOURCES,
    SPLIT_NAMES,
    ImageData,
    Loaded,
    LoadOptions,
    Split,
    check_choice,
    check_image_size,
    content_key,
)
from shared.data.spec import parse_spec
from shared.data.splits import duplicate_report, split_indices
from shared.errors import UserError

log = logging.getLogger(__name__)

MAX_CORRUPT_EXAMPLES = 10


def load_image_data(
    spec: str,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    validation_split: float = 0.1,
    test_split: float = 0.2,
    seed: int = 42,
    on_corrupt: str = "skip",
) -> ImageData:
    """Load the image data named by `spec` into train/validation/test splits.

    Splits the source does not ship are seeded, stratified fractions of its train pool:
    `validation_split` and `test_split` are fractions of that pool.
    """
    opts = LoadOptions(
        image_size=check_image_size(image_size),
        color_mode=check_choice("color_mode", color_mode, COLOR_MODES),
        validation_split=float(validation_split),
        test_split=float(test_split),
        seed=int(seed),
        on_corrupt=check_choice("on_corrupt", on_corrupt, ("skip", "fail")),
    )
    scheme, rest = parse_spec(spec, SOURCES.names())
    loaded = SOURCES.get(scheme)(rest, opts)
    return _finish(spec, loaded, opts)


def load_configured(data: Any, seed: int, source: str | None = None) -> ImageData:
    """`load_image_data` with the keys a domain's image `data` config section spells the
    same way (image_size, color_mode, validation_split, test_split, on_corrupt);
    `source` replaces `data.source` (a builtin that names a shipped file)."""
    return load_image_data(
        source or data.source,
        image_size=tuple(data.image_size) if data.image_size else None,
        color_mode=data.color_mode,
        validation_split=data.validation_split,
        test_split=data.test_split,
        seed=seed,
        on_corrupt=data.on_corrupt,
    )


def image_data_from_arrays(
    spec: str,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: list[str] | None = None,
    *,
    validation_split: float = 0.1,
    test_split: float = 0.2,
    seed: int = 42,
    groups: np.ndarray | None = None,
) -> ImageData:
    """An `ImageData` from in-memory (images, labels) splits a domain made itself (a
    generated set, a manifest's decoded files): the splits not given are cut as
    `load_image_data` cuts them, and with `groups` (one key per "train" image, such as a
    patient id) the images of one group stay in one split."""
    opts = _in_memory_options(validation_split, test_split, seed)
    return _finish(spec, array_source(parts, opts, spec, class_names), opts, groups)


def _in_memory_options(validation_split: float, test_split: float, seed: int) -> LoadOptions:
    """The options of a set a domain made in memory: no resize, nothing to skip."""
    return LoadOptions(
        image_size=None,
        color_mode="auto",
        validation_split=float(validation_split),
        test_split=float(test_split),
        seed=int(seed),
        on_corrupt="fail",
    )


def image_data_from_splits(
    spec: str,
    loaded: Loaded,
    *,
    validation_split: float = 0.1,
    test_split: float = 0.2,
    seed: int = 42,
) -> ImageData:
    """An `ImageData` from splits a domain checked and wrapped itself (3D volumes, whose
    (D, H, W, C) the 2D array checks refuse): the splits not given are cut, and duplicates
    and class counts recorded, exactly as `load_image_data` does."""
    opts = _in_memory_options(validation_split, test_split, seed)
    return _finish(spec, loaded, opts)


def describe(data: ImageData) -> str:
    """One paragraph for logs: classes, image (or volume) shape, split sizes and anything
    unusual."""
    shape, c = data.image_shape, data.image_shape[-1]
    info = data.split_info
    names = ", ".join(data.class_names[:10]) + (", ..." if data.num_classes > 10 else "")
    sizes = ", ".join(f"{name} {len(data.splits[name])}" for name in SPLIT_NAMES)
    origins = ", ".join(f"{name} {info['splits'][name]['origin']}" for name in SPLIT_NAMES)
    text = (
        f"{data.spec}: {data.num_classes} classes ({names}); "
        f"{'images' if len(shape) == 3 else 'volumes'} {'x'.join(map(str, shape))} "
        f"({'grayscale' if c == 1 else 'RGB'}) as uint8 0..255; splits: {sizes} "
        f"({origins}; seed {info['seed']})."
    )
    if info["corrupt_skipped"]:
        text += f" Skipped {info['corrupt_skipped']} corrupt image file(s)."
    duplicates = info.get("duplicates") or {}
    if duplicates.get("rows"):
        text += (
            f" Found {duplicates['rows']} exact duplicate image(s), {duplicates['across_splits']} "
            f"of them across splits."
        )
    for note in info.get("notes", []):
        text += f" {note[0].upper()}{note[1:]}."
    return text


def _finish(
    spec: str, loaded: Loaded, opts: LoadOptions, groups: np.ndarray | None = None
) -> ImageData:
    """Derive the splits the source did not ship (grouped by `groups` of the train pool
    when given) and record how every split was made."""
    if len(loaded.class_names) < 2:
        raise UserError(
            f"{spec} has {len(loaded.class_names)} class(es); classification needs at least 2"
        )
    splits = dict(loaded.splits)
    keys = {name: _content_keys(split, loaded.keys.get(name)) for name, split in splits.items()}
    info_splits: dict[str, dict[str, Any]] = {
        name: {"origin": "shipped"} for name in splits if name not in loaded.origins
    }
    info_splits.update(loaded.origins)
    missing = [name for name in SPLIT_NAMES if name not in splits]
    split_report: dict[str, Any] = {}
    if missing:
        pool, pool_keys = splits["train"], keys["train"]
        of = "whole dataset" if len(splits) == 1 else "shipped train"
        fractions = opts.fractions(missing)
        parts, split_report = split_indices(
            len(pool),
            fractions,
            opts.seed,
            labels=pool.labels,
            groups=groups,
            keys=pool_keys,
            what=spec,
        )
        for name, indices in parts.items():
            splits[name] = pool.subset(indices)
            keys[name] = None if pool_keys is None else pool_keys[indices]
            if name == "train":
                info_splits[name] = {"origin": "remainder", "of": of}
            elif name == "validation" and "cv" in split_report:  # tune --cv
                info_splits[name] = {
                    "origin": "cross-validation fold",
                    **split_report["cv"],
                    "of": of,
                }
            else:
                info_splits[name] = {
                    "origin": "seeded fraction",
                    "fraction": fractions[name],
                    "of": of,
                }
    for name in SPLIT_NAMES:
        if len(splits[name]) == 0:
            raise UserError(f"the {name} split of {spec} is empty; add data or change the split")
        counts = _class_counts(splits[name].labels, loaded.class_names)
        info_splits[name] = {"size": len(splits[name]), **info_splits[name]}
        info_splits[name]["class_counts"] = counts
    for note in loaded.notes:
        log.info("%s: %s", spec, note)
    split_info = {
        "spec": spec,
        "seed": opts.seed,
        "stratified": bool(missing),
        "image_shape": list(loaded.image_shape),
        "class_names": list(loaded.class_names),
        "splits": {name: info_splits[name] for name in SPLIT_NAMES},
        "duplicates": _duplicates(spec, splits, keys, split_report.get("duplicates")),
        "notes": list(loaded.notes),
        "corrupt_skipped": len(loaded.corrupt),
        "corrupt_examples": loaded.corrupt[:MAX_CORRUPT_EXAMPLES],
    }
    if groups is not None:
        split_info["groups"] = split_report.get("groups")
    return ImageData(
        spec=spec,
        class_names=list(loaded.class_names),
        image_shape=loaded.image_shape,
        splits={name: splits[name] for name in SPLIT_NAMES},
        split_info=split_info,
    )


def _content_keys(split: Split, file_keys: np.ndarray | None) -> np.ndarray | None:
    """One hash per example: of its pixel bytes (arrays) or its file (files); None if streamed."""
    if split.kind == "files":
        return file_keys
    if split.kind == "arrays":
        return np.array([content_key(image.tobytes()) for image in split.images], dtype=object)
    return None


def _duplicates(
    spec: str,
    splits: dict[str, Split],
    keys: dict[str, np.ndarray | None],
    from_splitter: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Exact duplicates over all three splits (first occurrence: train, then validation, test)."""
    if any(keys[name] is None for name in SPLIT_NAMES):
        return None  # a streamed split: hashing it would mean reading it all
    report = duplicate_report(
        np.concatenate([keys[name] for name in SPLIT_NAMES]),
        np.concatenate([np.full(len(splits[name]), i) for i, name in enumerate(SPLIT_NAMES)]),
        label_ids=np.concatenate([splits[name].labels for name in SPLIT_NAMES]),
    )
    report["hashed"] = "file bytes" if splits["train"].kind == "files" else "pixel bytes"
    if from_splitter:
        report["would_straddle"] = from_splitter["would_straddle"]
        report["handling"] = from_splitter["handling"]
    if report["across_splits"]:
        log.warning(
            "%s: %d image(s) in a shipped split also appear in an earlier split (exact duplicates)",
            spec,
            report["across_splits"],
        )
    return report


def _class_counts(labels: np.ndarray | None, class_names: list[str]) -> dict[str, int] | None:
    if labels is None:  # streamed tfds split: counting would mean reading it all
        return None
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts, strict=True)}
