"""Healthcare classification data: the specs, the builtins, and reading a user's files.

- `npz:PATH`: MedMNIST archives (`train_images`, `train_labels`, `val_*`, `test_*`;
  labels shaped (N,) or (N, 1)), their own splits used as given; Keras-style `x_train`
  keys too. Multi-label sets (ChestMNIST's (N, 14) labels) are refused.
- `folder:PATH`: one sub-folder of PNG/JPEG images per class.
- `csv:PATH`: a manifest, one row per image (PNG/JPEG or a DICOM slice), its label and
  patient id, split grouped by patient (`manifest.py`).
- `builtin:breastmnist`: BreastMNIST, shipped (see `data/README.md`).
- `builtin:phantom`: generated CT-like 2D slices, labelled by whether a liver lesion is
  present, windowed to 0..255 (`phantom.py`).

Every source becomes the shared `ImageData` (uint8 0..255 images, seeded splits), so the
shared tf.data pipeline, augmentation layers and trainer serve it as they serve vision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domains.healthcare.config import HealthcareConfig, HealthcareDataConfig, window_range
from domains.healthcare.data_checks import check_npz_labels
from shared.data import ImageData, image_data_from_arrays, load_configured, parse_spec
from shared.errors import UserError
from shared.input_contract import InputContract, record_image_data
from shared.run_dir import RunDir

CLASSIFY_SPECS = ("builtin", "npz", "folder", "csv")
DATA_DIR = Path(__file__).resolve().parent / "data"
BUILTINS = ("breastmnist", "phantom")
# Declared positive classes: what sensitivity and the threshold are about.
BREAST_CLASSES = ["malignant", "normal_or_benign"]
PHANTOM_CLASSES = ["no_lesion", "lesion"]
POSITIVE = {"builtin:breastmnist": "malignant", "builtin:phantom": "lesion"}
PHANTOM_IMAGES = 1200
PHANTOM_SHAPE = (64, 64)


def load(data: HealthcareDataConfig, seed: int) -> ImageData:
    """The configured source with its splits (shipped ones as given, others seeded)."""
    kind, rest = parse_spec(data.source, accepted=CLASSIFY_SPECS)
    if kind == "builtin" and rest not in BUILTINS:
        raise UserError(f"unknown builtin {rest!r}; healthcare builtins: {', '.join(BUILTINS)}")
    if kind == "npz":
        check_npz_labels(Path(rest).expanduser())
    if data.source == "builtin:phantom":
        loaded = phantom_images(seed, data)
    elif kind == "csv":
        from domains.healthcare.manifest import classify_data

        loaded = classify_data(data, seed)
    else:
        source = f"npz:{DATA_DIR / 'breastmnist.npz'}" if rest == "breastmnist" else data.source
        loaded = load_configured(data, seed, source)
        loaded.spec = data.source
    names = data.class_names or (BREAST_CLASSES if data.source == "builtin:breastmnist" else None)
    if names is not None:
        if len(names) != loaded.num_classes:
            raise UserError(
                f"data.class_names lists {len(names)} names; {data.source} has "
                f"{loaded.num_classes} classes ({', '.join(loaded.class_names)})"
            )
        loaded.class_names = [str(n) for n in names]
    return loaded


def phantom_images(seed: int, data: HealthcareDataConfig) -> ImageData:
    """Generated 2D CT-like slices in the abdomen window, lesion present or not."""
    from domains.healthcare import phantom

    images, labels = phantom.phantom_classification(
        PHANTOM_IMAGES, seed=seed, dims=2, shape=PHANTOM_SHAPE
    )
    pixels = window_to_uint8(images, "abdomen")[..., None]
    return image_data_from_arrays(
        "builtin:phantom",
        {"train": (pixels, np.asarray(labels, np.int32))},
        PHANTOM_CLASSES,
        validation_split=data.validation_split,
        test_split=data.test_split,
        seed=seed,
    )


def window_to_uint8(hu: np.ndarray, window) -> np.ndarray:
    """Hounsfield units clipped to a window and mapped linearly to 0..255."""
    low, high = window_range(window)
    scaled = (np.asarray(hu, np.float32) - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def positive_index(config: HealthcareConfig, class_names: list[str]) -> int:
    """Index of the class a binary classifier's threshold and sensitivity are about."""
    wanted = config.threshold.positive_class or POSITIVE.get(config.data.source)
    if wanted is None:
        return 1 if len(class_names) > 1 else 0
    if wanted not in class_names:
        raise UserError(
            f"threshold.positive_class {wanted!r} is not a class; classes: {', '.join(class_names)}"
        )
    return class_names.index(wanted)


def record_data(run: RunDir, data: ImageData, positive: int) -> None:
    """The run's data_splits.json and its input contract (image shape, classes, the
    positive class)."""
    record_image_data(
        run,
        data,
        "healthcare",
        "classify",
        "pixels 0..255; PNG/JPEG files are decoded and resized to this, DICOM slices "
        "windowed (CT, data.window) or min-max scaled (other modalities)",
        positive_class=data.class_names[positive],
    )


def run_inputs(run: RunDir) -> tuple[tuple[int, int, int], list[str], str]:
    """(image shape, class names, positive class) of a trained run."""
    contract = InputContract.read(run)
    details = contract.details or {}
    classes = list(contract.classes or [])
    return tuple(contract.input("image").shape), classes, details.get("positive_class")
