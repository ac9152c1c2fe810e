"""Checks of a healthcare config that run before TensorFlow starts (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.errors import UserError
from shared.model_catalog import check_model


def check_npz_labels(path: Path, volumes: bool | None = None) -> None:
    """Refuse multi-label archives (one column per finding) with a clear message, and,
    when `volumes` says which the model takes, 3D volumes for a 2D model and 2D images
    for a volume model (shapes only: the archive's members are read lazily)."""
    if not path.is_file():
        return  # the shared loader names the problem
    try:
        with np.load(path, allow_pickle=False) as f:
            key = next((k for k in ("train_labels", "y_train") if k in f.files), None)
            shape = f[key].shape if key else None
            images = next((k for k in ("train_images", "x_train") if k in f.files), None)
            image_shape = f[images].shape if images else None
    except Exception:  # unreadable: the shared loader reports it
        return
    if shape is not None and len(shape) == 2 and shape[1] > 1:
        raise UserError(
            f"{path}: labels have shape {shape}, one column per finding (multi-label, as "
            "ChestMNIST); healthcare classify takes one class per image"
        )
    if volumes is None or image_shape is None:
        return
    # (N, D, H, W) or (N, D, H, W, 1) are volumes; (N, H, W) or (N, H, W, C<=4) images.
    is_volume = len(image_shape) == 5 or (len(image_shape) == 4 and image_shape[-1] > 4)
    if is_volume and not volumes:
        raise UserError(
            f"{path}: images of shape {image_shape} are 3D volumes (MedMNIST 3D); train a "
            "volume model: --config classify3d (model.name=resnet3d)"
        )
    if volumes and not is_volume:
        raise UserError(
            f"{path}: images of shape {image_shape} are 2D; a volume model (resnet3d) takes "
            "(N, D, H, W) volumes: use a 2D model such as resnet"
        )


def is_volume_model(name: str) -> bool:
    """Whether zoo model `name` is a classifier of volumes (then classify trains it in 3D;
    a volume segmenter such as unet3d is not, and the 2D check refuses it)."""
    from shared.model_catalog import entries

    entry = entries().get(name, {})
    return "volume" in entry.get("modalities", ()) and entry["kind"].endswith("classifier")


def check_volume_classify(source_kind: str, rest: str) -> None:
    """A 3D classify run reads builtin:phantom or a MedMNIST 3D npz: archive."""
    if (source_kind, rest) == ("builtin", "phantom"):
        return
    if source_kind != "npz":
        raise UserError(
            f"3D classify (a volume model) reads builtin:phantom and npz: (MedMNIST 3D "
            f"archives); got {source_kind}:{rest}"
        )
    check_npz_labels(Path(rest).expanduser(), volumes=True)


def check_classifier(name: str) -> None:
    """The model is a zoo classifier of images."""
    check_model(
        name,
        lambda kind, modalities: (
            bool({"image", "volume"} & set(modalities)) and kind.endswith("classifier")
        ),
        "healthcare --task classify",
    )
