"""Segmentation data: cases (image, label map, spacing) and their splits, numpy only.

Sources (`data.source`):

- `builtin:phantom`: CT-like phantoms with exact masks (`phantom.py`), 2D slices or 3D
  volumes (`segment.dims`; auto is 2D), `segment.phantom_cases` of them, case i seeded by (seed, i);
- `nifti:FOLDER`: a Medical Segmentation Decathlon folder (`dataset.json`, `imagesTr/`,
  `labelsTr/`), label names and modality from `dataset.json`; in 2D each volume gives its
  axial slices (the last, superior axis of the canonical RAS array);
- `csv:PATH`: a manifest, one row per case: an image (NIfTI, NRRD, a DICOM series folder
  or file) and its mask (NIfTI, NRRD or a DICOM series of label values), and a patient id
  (`manifest.py`); label names from `data.class_names` (foreground, in label order) else
  `label_1`, `label_2`, ...;
- `nifti:IMAGE`, `nrrd:IMAGE` or `dicom:SERIES_OR_FILE` with `data.mask=MASK` (NIfTI, NRRD
  or a DICOM series): one image and its label map (evaluation only: one case cannot be
  split into train, validation and test, and `train` refuses it before TensorFlow).

Splits are cut by case through the shared splitter (`split_indices` grouped by case id,
or by patient id for a manifest), so a patient's slices never straddle train and test.
The modality that `data.normalize: auto` follows is `data.modality` if set, else MSD's
`dataset.json`, else the DICOM Modality tag, else CT when the intensities look like
Hounsfield units (minimum at or below -500). `seg_checks.check_source` refuses what
can be refused from headers alone (no masks, an unknown builtin, a mask whose grid
differs from its image) before TensorFlow loads; `load` reads the voxels, audits every pair's geometry
(`volume.audit`) and resamples to `data.spacing` when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from domains.healthcare.config import HealthcareConfig, window_range
from domains.healthcare.seg_checks import check_source, model_depth, resolve_dims, source_kind
from shared.data.splits import split_sizes
from shared.errors import UserError

# The zoo's U-Net divides its input by 255 (its `preprocess` layer), so the normalised
# intensities (0..1 for a CT window, z-scores for MR) are handed to it times this.
INPUT_SCALE = 255.0
PHANTOM_2D, PHANTOM_3D = (64, 64), (64, 64, 32)
PATCH_3D = 32
AUTO_PATCH_MAX = {2: 256, 3: 64}
HU_AIR_BELOW = -500.0  # a minimum at or below this is air in Hounsfield units: CT


@dataclass(repr=False)
class SegCase:
    """One image (2D or 3D raw intensities: HU for CT) with its label map and spacing."""

    id: str
    image: np.ndarray
    mask: np.ndarray | None
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:g}" for s in self.spacing)
        labels = "no mask" if self.mask is None else f"labels {np.unique(self.mask).tolist()}"
        return (
            f"SegCase({self.id!r}, image {'x'.join(map(str, self.image.shape))}, "
            f"spacing ({spacing}) mm, {labels})"
        )


@dataclass(repr=False)
class SegData:
    """Cases by split, with what the model needs to know about them."""

    spec: str
    dims: int
    label_names: list[str]
    modality: str | None
    splits: dict[str, list[SegCase]]
    report: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """Cases (or slices) per split, the label names, the modality, how it was split."""
        unit = "images" if self.dims == 2 else "volumes"
        lines = [
            f"{self.spec}: {self.dims}D segmentation, labels {', '.join(self.label_names)}; "
            f"modality {self.modality or 'unknown'}; split {self.report.get('method', '?')}"
            + (f", seed {self.report['seed']}" if "seed" in self.report else "")
        ]
        for name, cases in self.splits.items():
            shapes = sorted({"x".join(map(str, case.image.shape)) for case in cases})
            shown = ", ".join(shapes[:3]) + (", ..." if len(shapes) > 3 else "")
            lines.append(f"  {name:<10} {len(cases):>6,} {unit} ({shown})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return f"SegData({self.spec!r}, {self.dims}D, labels {self.label_names}, {sizes})"


# === Loading ===
def load(config: HealthcareConfig, seed: int, *, whole: bool = False) -> SegData:
    """The configured source's cases, split by case (or all in one "all" split)."""
    check_source(config)
    kind, rest = source_kind(config.data.source)
    dims = resolve_dims(config)
    groups, method = None, "grouped by case"
    if kind == "builtin":
        cases, names, modality = _phantom(config, seed)
    elif kind == "csv":
        cases, names, modality, groups, patients = _manifest(config)
        method = "grouped by patient" if patients else method
    else:
        path = Path(rest).expanduser()
        if kind == "nifti" and path.is_dir():
            cases, names, modality = _msd(path, config)
        else:
            cases, names, modality = _single(path, config)
    if whole:
        splits = {"all": _slices(cases) if dims == 2 and cases[0].image.ndim == 3 else cases}
        return SegData(config.data.source, dims, names, modality, splits, {"method": "whole"})
    if len(cases) < 3:
        raise UserError(
            f"{config.data.source} has {len(cases)} case(s); training splits cases into "
            "train, validation and test, so it needs at least 3"
        )
    from shared.data.splits import split_indices

    positions, report = split_indices(
        len(cases),
        {"validation": config.data.validation_split, "test": config.data.test_split},
        seed,
        groups=np.array([c.id for c in cases]) if groups is None else groups,
        what=config.data.source,
    )
    splits = {name: [cases[i] for i in rows] for name, rows in positions.items()}
    report = {**report, "method": method, "case_ids": _ids(splits)}
    if method == "grouped by patient":
        report["patient_ids"] = {
            name: sorted({str(groups[i]) for i in rows}) for name, rows in positions.items()
        }
    if dims == 2 and cases[0].image.ndim == 3:
        splits = {name: _slices(part) for name, part in splits.items()}
    return SegData(config.data.source, dims, names, modality, splits, report)


def _ids(splits: dict[str, list[SegCase]]) -> dict[str, list[str]]:
    return {name: [c.id for c in part] for name, part in splits.items()}


def _phantom(config: HealthcareConfig, seed: int) -> tuple[list[SegCase], list[str], str]:
    from domains.healthcare import phantom

    dims = resolve_dims(config)
    shape = tuple(config.segment.phantom_shape or (PHANTOM_2D if dims == 2 else PHANTOM_3D))
    if len(shape) != dims:
        raise UserError(f"segment.phantom_shape {list(shape)} has not {dims} axes (segment.dims)")
    images, masks, spacing, names = phantom.phantom_dataset(
        config.segment.phantom_cases, seed, dims=dims, shape=shape
    )
    cases = [
        _resampled(SegCase(f"phantom_{i:04d}", images[i], masks[i], tuple(spacing)), config)
        for i in range(len(images))
    ]
    return cases, names, "CT"


def _msd(folder: Path, config: HealthcareConfig) -> tuple[list[SegCase], list[str], str | None]:
    from domains.healthcare.nifti_io import read_msd, read_nifti
    from domains.healthcare.volume import audit

    dataset = read_msd(folder)
    if len(dataset.channels) > 1:
        raise UserError(
            f"{folder}: {len(dataset.channels)} channels ({', '.join(dataset.channels)}); "
            "segment trains on single-channel volumes"
        )
    cases = []
    for case in dataset.cases:
        image = read_nifti(case.image, on_nan=config.data.on_nan, modality=dataset.modality)
        mask = read_nifti(case.label, label=True)
        audit(image, mask)
        top = int(mask.array.max())
        if top >= len(dataset.labels):
            raise UserError(
                f"{case.label}: label value {top} but dataset.json names "
                f"{len(dataset.labels)} labels"
            )
        cases.append(_from_volumes(case.id, image, mask, config))
    return cases, dataset.labels, dataset.modality


def _single(path: Path, config: HealthcareConfig) -> tuple[list[SegCase], list[str], str | None]:
    image, mask = _pair(path, Path(config.data.mask).expanduser(), config)
    names = _label_names(config, int(mask.array.max()), f"data.mask {config.data.mask}")
    return [_from_volumes(path.name, image, mask, config)], names, _modality(config, [image])


def _manifest(config: HealthcareConfig):
    """(cases, label names, modality, patient group per case, whether grouped by patient)."""
    from domains.healthcare.manifest import read_manifest

    manifest = read_manifest(config.data.source, config.data, "segment")
    stems = [_case_stem(row.image) for row in manifest.rows]
    cases, images, top = [], [], 0
    for row, stem in zip(manifest.rows, stems, strict=True):
        image, mask = _pair(row.image, row.target, config)
        top = max(top, int(mask.array.max()))
        case_id = stem if stems.count(stem) == 1 else f"{stem}@row{row.number}"
        cases.append(_from_volumes(case_id, image, mask, config))
        images.append(image)
    names = _label_names(config, top, f"the masks of {manifest.path}")
    grouped = manifest.patient_column is not None
    return cases, names, _modality(config, images), manifest.groups(), grouped


def _pair(image_path: Path, mask_path: Path, config: HealthcareConfig):
    """(image, mask) canonical Volumes of any readable kind, audited onto one grid."""
    from domains.healthcare.nifti_io import read_volume
    from domains.healthcare.volume import audit

    image = read_volume(image_path, on_nan=config.data.on_nan, modality=config.data.modality)
    mask = read_volume(mask_path, label=True)
    audit(image, mask)
    if int(mask.array.min()) < 0:
        raise UserError(f"{mask.source}: negative label value {int(mask.array.min())}")
    return image, mask


def _label_names(config: HealthcareConfig, top: int, where: str) -> list[str]:
    """background plus `data.class_names` (the foreground labels 1.., in order; a leading
    "background" is taken as label 0) or label_1..label_top."""
    given = [str(n) for n in config.data.class_names or []]
    if given and given[0].lower() == "background":
        given = given[1:]
    if not given:
        return ["background", *(f"label_{i}" for i in range(1, max(top, 1) + 1))]
    if top > len(given):
        raise UserError(
            f"{where} hold label values up to {top}; data.class_names names {len(given)} "
            f"foreground labels ({', '.join(given)})"
        )
    return ["background", *given]


def _modality(config: HealthcareConfig, images: list) -> str | None:
    """`data.modality`, else the one modality the images declare or look like (CT when a
    minimum is HU air); images of different modalities are refused."""
    if config.data.modality:
        return config.data.modality.upper()
    found = {
        (image.modality or ("CT" if float(image.array.min()) <= HU_AIR_BELOW else "")).upper()
        for image in images
    } - {""}
    if len(found) > 1:
        raise UserError(
            f"{config.data.source}: images of several modalities ({', '.join(sorted(found))}); "
            "one run normalises one way: set data.modality or data.normalize"
        )
    return found.pop() if found else None


def _case_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _from_volumes(case_id: str, image, mask, config: HealthcareConfig) -> SegCase:
    """A case from an audited (image, mask) pair of canonical Volumes, resampled if asked."""
    from domains.healthcare.volume import Volume, resample

    if config.data.spacing:
        # Audited onto one grid: the mask takes the image's affine, so header float noise
        # cannot round the two resampled shapes apart (1.4999 vs 1.5 voxels).
        mask = Volume(mask.array, image.affine, mask.modality, mask.source, mask.meta)
        image, mask = resample(image, _target(config, 3), 1), resample(mask, _target(config, 3), 0)
    return SegCase(
        case_id,
        np.asarray(image.array, np.float32),
        np.asarray(mask.array, np.uint8),
        image.spacing,
        image.affine,
    )


def _target(config: HealthcareConfig, ndim: int) -> tuple[float, ...]:
    values = list(config.data.spacing or [])
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or any(v <= 0 for v in values):
        raise UserError(
            f"data.spacing {config.data.spacing} must be one positive number or {ndim} of them"
        )
    return tuple(float(v) for v in values)


def _resampled(case: SegCase, config: HealthcareConfig) -> SegCase:
    """A phantom case at `data.spacing` (2D images as one-slice volumes)."""
    if not config.data.spacing:
        return case
    from domains.healthcare.volume import Volume, resample

    flat = case.image.ndim == 2
    image = case.image[..., None] if flat else case.image
    mask = case.mask[..., None] if flat else case.mask
    spacing = (*case.spacing, 1.0) if flat else case.spacing
    target = (*_target(config, 2), 1.0) if flat else _target(config, 3)
    affine = np.diag([*spacing, 1.0])
    image = resample(Volume(image, affine), target, 1)
    mask = resample(Volume(mask, affine), target, 0)
    cut = (lambda a: a[..., 0]) if flat else (lambda a: a)
    return SegCase(
        case.id, cut(image.array), cut(mask.array), tuple(image.spacing[: case.image.ndim])
    )


def _slices(cases: list[SegCase]) -> list[SegCase]:
    """Every axial slice (last axis) of each volume as a 2D case."""
    return [
        SegCase(
            f"{case.id}:{k}",
            case.image[..., k],
            None if case.mask is None else case.mask[..., k],
            case.spacing[:2],
        )
        for case in cases
        for k in range(case.image.shape[-1])
    ]


# === Intensities ===
def normalize_mode(config: HealthcareConfig, modality: str | None) -> str:
    """`data.normalize` with auto resolved: window for CT, zscore for anything else."""
    mode = config.data.normalize
    if mode == "auto":
        return "window" if (modality or "").upper() == "CT" else "zscore"
    return mode


def normalize(image: np.ndarray, mode: str, window) -> np.ndarray:
    """Raw intensities -> the model's input scale (x INPUT_SCALE), float32.

    window: clip to the HU window, 0..1; zscore: (x - mean) / std of this image or volume
    (std floored at 1e-6); none: unchanged (the input is taken as already 0..1).
    """
    image = np.asarray(image, np.float32)
    if mode == "window":
        low, high = window_range(window)
        out = np.clip((image - low) / (high - low), 0.0, 1.0)
    elif mode == "zscore":
        out = (image - image.mean()) / max(float(image.std()), 1e-6)
    else:
        out = image
    return (out * INPUT_SCALE).astype(np.float32)


def patch_size(config: HealthcareConfig, data: SegData | None = None) -> tuple[int, ...]:
    """The training patch: `segment.patch_size`; else the phantom's image size; else the
    training cases' median size rounded up to a multiple of 2^depth (capped per axis)."""
    seg, dims = config.segment, resolve_dims(config)
    if seg.patch_size:
        patch = tuple(int(p) for p in seg.patch_size)
    elif config.data.source.startswith("builtin:") and dims == 2:
        patch = tuple(seg.phantom_shape or PHANTOM_2D)
    elif config.data.source.startswith("builtin:"):
        patch = (PATCH_3D,) * 3
    elif data is None:
        raise ValueError("the automatic patch size needs the data")
    else:
        factor = 2 ** model_depth(config)
        shapes = np.array([case.image.shape for case in data.splits["train"]])
        cap = AUTO_PATCH_MAX[dims]
        patch = tuple(
            int(min(cap, max(factor, -(-int(np.median(shapes[:, axis])) // factor) * factor)))
            for axis in range(dims)
        )
    if len(patch) != dims or min(patch) < 1:
        raise UserError(
            f"segment.patch_size {list(patch)} must be {dims} positive sizes ({dims}D segment)"
        )
    return patch
