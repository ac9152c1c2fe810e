"""Healthcare 3D classification data: MedMNIST 3D archives and the 3D CT phantom as uint8
volumes, their tf.data pipeline, and the one preprocessing that predict and the export
apply to a raw volume.

- `npz:PATH`: a MedMNIST 3D archive (OrganMNIST3D, NoduleMNIST3D, AdrenalMNIST3D,
  FractureMNIST3D, VesselMNIST3D, SynapseMNIST3D): `train_images` (N, D, H, W) uint8
  (28^3, or 64^3 for MedMNIST+), `train_labels` (N, 1), `val_*` and `test_*`, the splits
  used as given (Keras-style `x_train` keys and a trailing channel axis read too). An
  archive is 3D when its images have one axis more than a 2D one (`data_checks`).
- `builtin:phantom`: `PHANTOM_VOLUMES` CT-like crops of 28^3 voxels of 4 mm centred on
  the liver (`phantom.phantom_crop`, slices last; MedMNIST 3D's organ-centred 28^3
  crops), balanced lesion in the crop / none, windowed by `data.window` to 0..255; seeded
  splits.

Volumes live in the shared `ImageData` (image_shape (D, H, W, 1)), so classify's
calibration, threshold and metrics read them as they read images.

A raw volume (predict's NIfTI or DICOM series, the export's request) becomes model input
as training data were made: CT phantom runs window it (HU, `data.window`); MedMNIST runs
min-max scale it per volume (how MedMNIST made its 0..255 voxels); then a trilinear,
antialiased resize to the model's input size (`prepare_volumes`, TensorFlow ops, so
predict and the SavedModel run the same graph).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from domains.healthcare.config import HealthcareDataConfig, window_range
from domains.healthcare.data import PHANTOM_CLASSES, window_to_uint8
from shared.data.sources import ImageData, Loaded, Split, image_data_from_splits
from shared.data.sources.arrays import to_uint8
from shared.data.spec import parse_spec
from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.run_dir import RunDir

LOG = logging.getLogger("deepfield.healthcare")
VOLUME_SPECS = ("builtin", "npz")
PHANTOM_VOLUMES = 400
# Liver-centred crops (112 mm a side at 4 mm): whole-abdomen volumes at 8 mm left lesions
# 2-5 voxels across in 48x48x32 voxels and a 3D ResNet at chance (test AUC 0.52).
PHANTOM_VOLUME_SHAPE = (28, 28, 28)
PHANTOM_SPACING_MM = (4.0, 4.0, 4.0)
NPZ_KEYS = {
    "train": (("train_images", "train_labels"), ("x_train", "y_train")),
    "validation": (("val_images", "val_labels"), ("x_val", "y_val")),
    "test": (("test_images", "test_labels"), ("x_test", "y_test")),
}
# data.augment keys a volume pipeline understands (flips along any axis, intensity jitter).
AUGMENT_KEYS = ("flip", "contrast", "brightness")


# === Loading ===
def load(data: HealthcareDataConfig, seed: int) -> ImageData:
    """The configured 3D source as volumes (uint8, (D, H, W, 1)) with three splits."""
    kind, rest = parse_spec(data.source, accepted=VOLUME_SPECS)
    if kind == "builtin":
        if rest != "phantom":
            raise UserError(
                f"3D classify reads builtin:phantom and npz: (MedMNIST 3D); got {data.source}"
            )
        parts, names = phantom_volumes(seed, data), list(PHANTOM_CLASSES)
    else:
        parts, names = npz_volumes(Path(rest).expanduser())
    shapes = {x.shape[1:] for x, _ in parts.values()}
    if len(shapes) > 1:
        raise UserError(f"{data.source}: splits hold volumes of different sizes {sorted(shapes)}")
    shape = tuple(int(d) for d in next(iter(shapes)))
    splits = {
        name: Split(labels=y.astype(np.int32), image_shape=shape, images=x)
        for name, (x, y) in parts.items()
    }
    loaded = Loaded(class_names=names, image_shape=shape, splits=splits)
    volumes = image_data_from_splits(
        data.source,
        loaded,
        validation_split=data.validation_split,
        test_split=data.test_split,
        seed=seed,
    )
    if data.class_names:
        if len(data.class_names) != volumes.num_classes:
            raise UserError(
                f"data.class_names lists {len(data.class_names)} names; {data.source} has "
                f"{volumes.num_classes} classes ({', '.join(volumes.class_names)})"
            )
        volumes.class_names = [str(n) for n in data.class_names]
    return volumes


def phantom_volumes(seed: int, data: HealthcareDataConfig) -> dict[str, tuple]:
    """Generated liver-centred CT crops in the configured window, a lesion in them or not."""
    from domains.healthcare import phantom

    hu, labels = phantom.phantom_classification(
        PHANTOM_VOLUMES,
        seed=seed,
        dims=3,
        shape=PHANTOM_VOLUME_SHAPE,
        crop=True,
        spacing=PHANTOM_SPACING_MM,
    )
    return {"train": (window_to_uint8(hu, data.window)[..., None], labels)}


def npz_volumes(path: Path) -> tuple[dict[str, tuple], list[str]]:
    """A MedMNIST 3D archive's splits (uint8 (N, D, H, W, 1), int labels) and class names
    (the sorted label values, renumbered 0..K-1, as the 2D loader names them)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as exc:  # zipfile, pickle and format errors: not a usable archive
        raise UserError(f"cannot read {path} as .npz: {exc}") from None
    parts = {}
    for split, candidates in NPZ_KEYS.items():
        for x_key, y_key in candidates:
            if x_key in arrays and y_key in arrays:
                parts[split] = _volume_split(path, split, arrays[x_key], arrays[y_key])
                break
    if "train" not in parts:
        raise UserError(
            f"{path} has no train_images/train_labels arrays; keys: {', '.join(sorted(arrays))}"
        )
    values = np.unique(np.concatenate([y for _, y in parts.values()]))
    renumbered = {n: (x, np.searchsorted(values, y)) for n, (x, y) in parts.items()}
    return renumbered, [str(v) for v in values]


def _volume_split(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> tuple:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(
            f"{path}: {split} labels have shape {y.shape}, several per volume (multi-label); "
            "healthcare classify takes one class per volume"
        )
    if x.ndim == 5 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 4:
        raise UserError(
            f"{path}: {split} images have shape {x.shape}; 3D classify takes (N, D, H, W) volumes"
        )
    if len(x) != len(y):
        raise UserError(f"{path}: {len(x)} {split} volumes but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
            raise UserError(f"{path}: {split} labels have dtype {y.dtype}; expected integers")
        y = y.astype(np.int64)
    return np.ascontiguousarray(to_uint8(x, f"{path} ({split})"))[..., None], y


def describe(data: ImageData) -> str:
    """One line for the log: classes, volume shape, split sizes and origins."""
    info = data.split_info["splits"]
    sizes = ", ".join(
        f"{name} {len(split)} ({info[name]['origin']})" for name, split in data.splits.items()
    )
    return (
        f"{data.spec}: {data.num_classes} classes ({', '.join(data.class_names[:11])}); "
        f"volumes {'x'.join(map(str, data.image_shape[:3]))} uint8; splits: {sizes}"
    )


# === The run's input contract ===
def intensity_mode(source: str) -> str:
    """How a raw volume is brought to 0..255: the phantom's HU through the CT window,
    MedMNIST's voxels by per-volume min-max scaling (how MedMNIST made them)."""
    return "window" if source == "builtin:phantom" else "minmax"


def record_data(run: RunDir, data: ImageData, positive: int, window) -> dict[str, Any]:
    """data_splits.json and inputs.json of a 3D run: one float32 `volume` input of any size,
    how it is scaled (window or min-max) and resized, the classes and the positive class."""
    info = dict(data.split_info)
    source, splits = info.pop("spec"), info.pop("splits")
    info.pop("image_shape", None), info.pop("class_names", None)
    run.write_splits(source, splits, **info)
    mode = intensity_mode(data.spec)
    low, high = window_range(window)
    details = {
        "source": data.spec,
        "dims": 3,
        "model_input": list(data.image_shape),
        "intensity": mode,
        "window": [low, high],
        "positive_class": data.class_names[positive],
        "spacing": None,
        "field_of_view_mm": None,
    }
    if data.spec == "builtin:phantom":  # liver-centred crops of PHANTOM_SPACING_MM voxels
        details["spacing"] = list(PHANTOM_SPACING_MM)
        details["field_of_view_mm"] = [
            n * s for n, s in zip(data.image_shape, PHANTOM_SPACING_MM, strict=False)
        ]
    what = (
        f"HU, windowed to [{low:g}, {high:g}]"
        if mode == "window"
        else "any intensity, min-max scaled per volume"
    )
    InputContract(
        "healthcare",
        "classify",
        [
            InputSpec(
                "volume",
                "float32",
                [None, None, None],
                f"one 3D volume ({what}) in the training data's axis order (NIfTI/DICOM: "
                f"canonical RAS, slices last), resized trilinearly to "
                f"{'x'.join(map(str, data.image_shape[:3]))}",
            )
        ],
        classes=list(data.class_names),
        details=details,
    ).write(run)
    return details


def run_contract(run: RunDir) -> tuple[dict[str, Any], list[str]]:
    """(details, class names) of a 3D run's inputs.json."""
    contract = InputContract.read(run)
    return dict(contract.details), list(contract.classes or [])


# === Preprocessing of raw volumes (predict and the export) ===
def prepare_volumes(volumes: tf.Tensor, details: dict[str, Any]) -> tf.Tensor:
    """Raw volumes (B, D', H', W') float32 -> model input (B, D, H, W, 1) on 0..255."""
    volumes = tf.convert_to_tensor(volumes, tf.float32)
    if details["intensity"] == "window":
        low, high = (float(v) for v in details["window"])
        scaled = (volumes - low) / (high - low)
    else:
        low = tf.reduce_min(volumes, axis=[1, 2, 3], keepdims=True)
        high = tf.reduce_max(volumes, axis=[1, 2, 3], keepdims=True)
        scaled = (volumes - low) / tf.maximum(high - low, 1e-6)
    voxels = tf.round(tf.clip_by_value(scaled, 0.0, 1.0) * 255.0)
    return resize_volumes(voxels, details["model_input"][:3])[..., None]


def resize_volumes(volumes: tf.Tensor, size) -> tf.Tensor:
    """Trilinear, antialiased resize of (B, D, H, W) to (B, *size): bilinear over (D, H)
    with W as channels, then over W (a resize to an unchanged side is the identity)."""
    depth, height, width = (int(s) for s in size)
    x = tf.image.resize(volumes, (depth, height), antialias=True)
    x = tf.transpose(x, [0, 3, 1, 2])  # (B, W, D, H)
    x = tf.image.resize(x, (width, depth), antialias=True)
    return tf.transpose(x, [0, 2, 3, 1])


# === The training pipeline ===
def check_augment(augment: dict[str, Any]) -> None:
    unknown = sorted(set(augment) - set(AUGMENT_KEYS))
    if unknown:
        raise UserError(
            f"3D classify augments with {', '.join(AUGMENT_KEYS)} (flip: true flips every "
            f"axis at random, or a list of axes; contrast, brightness: factors); got "
            f"{', '.join(unknown)}"
        )


def augmenter(augment: dict[str, Any]):
    """A per-volume tf.data map: random flips along the configured axes and a random
    contrast (scale about the volume's mean) and brightness (shift) jitter, on 0..255."""
    check_augment(augment)
    flip = augment.get("flip") or False
    axes = [0, 1, 2] if flip is True or flip == "all" else [int(a) for a in (flip or [])]
    if any(a not in (0, 1, 2) for a in axes):
        raise UserError(f"data.augment.flip takes true or a list of axes 0, 1, 2; got {flip!r}")
    contrast = float(augment.get("contrast") or 0.0)
    brightness = float(augment.get("brightness") or 0.0)

    def apply(volume: tf.Tensor, label: tf.Tensor):
        for axis in axes:
            flipped = tf.reverse(volume, [axis])
            volume = tf.cond(tf.random.uniform([]) < 0.5, lambda f=flipped: f, lambda v=volume: v)
        if contrast:
            factor = tf.random.uniform([], 1.0 - contrast, 1.0 + contrast)
            mean = tf.reduce_mean(volume)
            volume = (volume - mean) * factor + mean
        if brightness:
            volume = volume + tf.random.uniform([], -brightness, brightness) * 255.0
        return tf.clip_by_value(volume, 0.0, 255.0), label

    return apply if (axes or contrast or brightness) else None


def volume_dataset(
    data: ImageData,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 42,
    augment: dict[str, Any] | None = None,
) -> tf.data.Dataset:
    """Batches (float32 volumes (B, D, H, W, 1) on 0..255, int32 labels) of one split."""
    images, labels = data.splits[split].arrays()
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    apply = augmenter(augment or {})
    if apply is not None:
        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
