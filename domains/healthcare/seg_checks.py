"""Segmentation checks before TensorFlow: the source (`check_source`: what can be
refused from paths and headers alone) and the segmenter (`check_segmenter`), and the
model choices both need (`resolve_dims`, `model_name`, `model_depth`). Numpy and file
headers only; `seg_data` reads the voxels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domains.healthcare.config import HealthcareConfig
from shared.errors import UserError

SEGMENT_SPECS = ("builtin", "nifti", "nrrd", "dicom", "csv")
SEGMENT_BUILTINS = ("phantom",)
SEGMENTERS = {2: "unet", 3: "unet3d"}
DEFAULT_DEPTH = {2: 4, 3: 3}


def check_source(config: HealthcareConfig, train: bool = False) -> None:
    """Refuse a source segmentation cannot read (or, with `train`, cannot train on), from
    headers only."""
    kind, rest = source_kind(config.data.source)
    if kind == "builtin":
        if rest not in SEGMENT_BUILTINS:
            has = "has no masks (it is a classification set)" if rest == "breastmnist" else ""
            raise UserError(
                f"builtin:{rest} {has or 'is not a segmentation builtin'}; segment's builtins: "
                f"{', '.join('builtin:' + b for b in SEGMENT_BUILTINS)}"
            )
        return
    path = Path(rest).expanduser()
    if kind == "csv":
        _check_manifest(config)
    elif kind == "nifti" and path.is_dir():
        _check_msd(path)
    else:
        if not config.data.mask:
            raise UserError(
                f"{kind}:{rest} is one image without a label map: segment needs masks; set "
                "data.mask=PATH to its mask (NIfTI, NRRD or a DICOM series), or give an MSD "
                "folder (dataset.json, imagesTr/, labelsTr/) or a csv: manifest"
            )
        mask = Path(config.data.mask).expanduser()
        if not mask.exists():
            raise UserError(f"data.mask {mask}: no such file or folder")
        if _nifti(path) and _nifti(mask):
            _check_pair(path, mask)
        if train:
            raise UserError(
                f"{kind}:{rest} with data.mask is one case: evaluation only (deepfield "
                f"healthcare evaluate --run RUN --data {kind}:{rest} --mask {mask}); training "
                "splits cases into train, validation and test, so give an MSD folder or a "
                "csv: manifest"
            )


def resolve_dims(config: HealthcareConfig) -> int:
    """`segment.dims`, with auto: 2 for the phantom, 3 for NIfTI volumes."""
    dims = config.segment.dims
    if dims == "auto":
        return 2 if config.data.source.startswith("builtin:") else 3
    return int(dims)


def model_name(config: HealthcareConfig) -> str:
    """`model.name`, with auto: `unet` in 2D, `unet3d` in 3D."""
    name = config.model.name
    return SEGMENTERS[resolve_dims(config)] if name == "auto" else name


def model_depth(config: HealthcareConfig) -> int:
    depth = config.model.options().get("depth", DEFAULT_DEPTH[resolve_dims(config)])
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise UserError(f"model.depth must be a positive integer, got {depth!r}")
    return depth


def check_segmenter(config: HealthcareConfig) -> None:
    """The model is the zoo's U-Net of the configured dimensionality, and a given patch
    halves evenly `depth` times."""
    dims = resolve_dims(config)
    wanted, name = SEGMENTERS[dims], model_name(config)
    if name != wanted:
        raise UserError(
            f"segment in {dims}D trains model.name={wanted} (or auto); got {name!r} "
            f"(the {'3D' if dims == 2 else '2D'} U-Net is {SEGMENTERS[5 - dims]}: set "
            "segment.dims to match)"
        )
    depth = model_depth(config)
    given = config.segment.patch_size
    if given or config.data.source.startswith("builtin:"):
        from domains.healthcare.seg_data import patch_size  # seg_data imports this module

        patch = patch_size(config)
        if any(side % 2**depth for side in patch):
            raise UserError(
                f"segment.patch_size {list(patch)}: with model.depth={depth} every side must "
                f"be a multiple of {2**depth}"
            )


def source_kind(source: str) -> tuple[str, str]:
    """(kind, the rest) of a segment data spec, a kind segment reads."""
    kind, _, rest = source.partition(":")
    if kind not in SEGMENT_SPECS:
        raise UserError(
            f"segment reads {', '.join(k + ':' for k in SEGMENT_SPECS)} (builtin:phantom, an "
            f"MSD folder, a manifest, or one image with data.mask); got --data {source}"
        )
    return kind, rest


def _nifti(path: Path) -> bool:
    from domains.healthcare.nifti_io import volume_kind

    return path.is_file() and volume_kind(path) == "nifti"


def _check_manifest(config: HealthcareConfig) -> None:
    """The manifest's columns and files, and the pairs that are both NIfTI by header."""
    from domains.healthcare.manifest import read_manifest

    for row in read_manifest(config.data.source, config.data, "segment").rows:
        if _nifti(row.image) and _nifti(row.target):
            _check_pair(row.image, row.target)


def _check_msd(folder: Path) -> None:
    from domains.healthcare.nifti_io import read_msd

    if not (folder / "dataset.json").is_file():
        labels = folder / "labelsTr"
        raise UserError(
            f"{folder}: segment needs masks: no dataset.json"
            + ("" if labels.is_dir() else " and no labelsTr/")
            + " (expected the MSD layout: dataset.json, imagesTr/, labelsTr/)"
        )
    dataset = read_msd(folder)
    if len(dataset.labels) < 2:
        raise UserError(f"{folder}/dataset.json names no foreground label")
    for case in dataset.cases:
        _check_pair(case.image, case.label)


def _check_pair(image: Path, mask: Path) -> None:
    """Shape and affine of an image and its mask agree (headers only, no voxels read)."""
    import nibabel as nib

    for path in (image, mask):
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    try:
        a, b = nib.load(image), nib.load(mask)
    except Exception as exc:  # nibabel raises many kinds for a bad header
        raise UserError(f"{image} or {mask}: unreadable NIfTI ({exc})") from None
    shape_a, shape_b = tuple(a.shape[:3]), tuple(b.shape[:3])
    if shape_a != shape_b:
        raise UserError(f"mask {mask} does not match image {image}: shape {shape_b} vs {shape_a}")
    if not np.allclose(a.affine, b.affine, atol=1e-3):
        raise UserError(
            f"mask {mask} does not match image {image}: their affines differ "
            f"(max {np.max(np.abs(a.affine - b.affine)):.4g}); check the mask belongs to it"
        )
